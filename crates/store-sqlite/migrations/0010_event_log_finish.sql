-- The end of migration 0010, run once every event was verified and copied
-- into event_log (src/layout_migration.rs): the old table goes, with its
-- eleven text columns, ten indexes and triggers, and so do the tables and
-- triggers the writer now keeps itself (the actor list is in `actors`, the
-- project list is read from `log_values`).
DROP TRIGGER IF EXISTS event_openings_note_actor;
DROP TRIGGER IF EXISTS event_personal_note_actor;
DROP TABLE events;
DROP TABLE event_actors;
DROP TABLE event_projects;
