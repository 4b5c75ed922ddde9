-- Log streams' per-kind settings (issue 15): mirrors the embedded
-- backend's 0020_stream_options.sql.
ALTER TABLE log_streams ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
ALTER TABLE log_streams ADD COLUMN sealed_client_key BYTEA;
