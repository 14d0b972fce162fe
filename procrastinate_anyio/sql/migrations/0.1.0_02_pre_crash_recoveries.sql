-- Crash recoveries are counted apart from attempts: a job whose worker died
-- while running it goes back to todo and this counter grows; the rescuer
-- fails the job once it passes the worker's max_crash_recoveries.
ALTER TABLE pa_jobs ADD COLUMN recoveries integer NOT NULL DEFAULT 0;
