-- Migration 0.1.0_04: paused queues. Workers claim no job of a queue listed
-- here; deferring to it still works.

CREATE TABLE pa_queue_pauses (
    queue_name text PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pa_queue_pauses_queue_name_check CHECK (char_length(queue_name) BETWEEN 1 AND 255)
);
