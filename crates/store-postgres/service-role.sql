-- Grants for the role the servers run as (here `auditlog_app`), so that the
-- database itself refuses any UPDATE, DELETE or TRUNCATE of events, even
-- before the triggers do. Run as the owner of the tables, after the owner
-- has started Auditlog once (which applies the migrations). Tested by
-- crates/store-postgres/src/tests.rs (a_service_role_without_update_grants_runs_the_store).
GRANT USAGE ON SCHEMA public TO auditlog_app;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO auditlog_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO auditlog_app;
-- Events and the personal values beside them: append only. No UPDATE,
-- DELETE or TRUNCATE.
GRANT INSERT ON event_log, event_personal TO auditlog_app;
-- The event log's dictionary: appended, never changed.
GRANT INSERT ON log_values TO auditlog_app;
-- The directory: new accounts, keys and users.
GRANT INSERT ON accounts, api_keys, users TO auditlog_app;
-- Keys are revoked and note their last use (to the minute).
GRANT UPDATE ON api_keys TO auditlog_app;
-- The declared personal details paths (issue 16): replaced by admins.
GRANT INSERT, UPDATE ON personal_paths TO auditlog_app;
-- The per-account sequencer rows: created with the account, locked
-- (SELECT … FOR UPDATE needs UPDATE) and moved by every append.
GRANT INSERT, UPDATE ON account_sequencers TO auditlog_app;
-- Export jobs change status as workers claim, renew and finish them.
GRANT INSERT, UPDATE ON export_jobs TO auditlog_app;
-- The Merkle tree, checkpoints and leaf dictionaries: appended, never changed.
GRANT INSERT ON tree_hashes, checkpoints, leaf_dictionaries TO auditlog_app;
-- Console sessions come and go. Actors are added by appends, which also
-- keep each actor's latest name and email.
GRANT INSERT, DELETE ON console_sessions TO auditlog_app;
GRANT INSERT, UPDATE ON actors TO auditlog_app;
-- Log streams are created, changed (cursor, lease, status) and deleted by
-- admins and the delivery workers; their batch history is trimmed.
GRANT INSERT, UPDATE, DELETE ON log_streams, log_stream_batches TO auditlog_app;
-- The root log (issue 17): leaves, hashes, root checkpoints and
-- cosignatures appended, never changed; the submitter's lease row moves.
GRANT INSERT ON root_leaves, root_hashes, root_checkpoints, root_cosignatures TO auditlog_app;
GRANT UPDATE ON root_submitter TO auditlog_app;
-- The per-day rollups (event_rollups, actor_rollups, migration 0022;
-- actor_kind_rollups, migration 0024) are
-- kept by the event log's triggers, which run as the owner: no write grant
-- (SELECT above is all the readers need).
-- Retention and erasure (issue 16): bodies are removed only through
-- auditlog_remove_body (SECURITY DEFINER: it runs as the owner, and the
-- triggers check the covering record); the service role deletes nothing
-- itself. It adds the coverage of the records it appends, keeps legal holds
-- and prune jobs, and sets an account's retention_days.
GRANT INSERT ON removal_coverage TO auditlog_app;
GRANT EXECUTE ON FUNCTION auditlog_remove_body(BIGINT, BIGINT, TEXT, BIGINT, TEXT) TO auditlog_app;
-- Erasure replaces an event's search words (issue 14) only through
-- auditlog_replace_words (SECURITY DEFINER; the log's trigger refuses any
-- UPDATE that changes more than the words).
GRANT EXECUTE ON FUNCTION auditlog_replace_words(BIGINT, BIGINT, TEXT) TO auditlog_app;
GRANT INSERT, UPDATE ON legal_holds, prune_jobs TO auditlog_app;
GRANT UPDATE (retention_days) ON accounts TO auditlog_app;
-- Erasure (issue 16): version 2 events are erased only through
-- auditlog_erase_personal (SECURITY DEFINER, the triggers check the
-- covering Auditlog Erasure record); the service role keeps erasure jobs,
-- renames the subject's actor rows (UPDATE on actors, above) and bumps the
-- generation that tells writers to forget cached actor ids.
GRANT EXECUTE ON FUNCTION auditlog_erase_personal(BIGINT, BIGINT, BYTEA) TO auditlog_app;
GRANT INSERT, UPDATE ON erasures TO auditlog_app;
GRANT UPDATE ON erasure_generation TO auditlog_app;
-- Account administration (issue 18): custom event types are the account's
-- taxonomy; admins change users' roles, disable and re-enable them, and
-- reset passwords (the last-admin guard locks the rows: FOR UPDATE needs
-- UPDATE); one-time sign-in links are used up; two-factor enrolments and
-- recovery codes are confirmed, used and removed; an account may require
-- two-factor sign-in; the keys of the Login Failed hashes are created once.
GRANT UPDATE (taxonomy) ON accounts TO auditlog_app;
GRANT UPDATE (role, disabled_at, password_hash, password_changed_at) ON users TO auditlog_app;
GRANT INSERT, DELETE ON sign_in_links TO auditlog_app;
GRANT INSERT, UPDATE, DELETE ON user_two_factor, user_recovery_codes TO auditlog_app;
GRANT INSERT, UPDATE ON account_two_factor TO auditlog_app;
GRANT INSERT ON login_hash_keys TO auditlog_app;
