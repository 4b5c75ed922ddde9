-- Log streams' per-kind settings (issue 15): `options` is a JSON object
-- (a Splunk HEC stream's `index` and `sourcetype`, a TLS client
-- certificate chain in PEM); `sealed_client_key` the TLS client
-- certificate's private key, sealed by the server like the secrets (NULL:
-- no client certificate).
ALTER TABLE log_streams ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
ALTER TABLE log_streams ADD COLUMN sealed_client_key BLOB;
