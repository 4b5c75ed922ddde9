//! The server crate's integration tests, one test binary with a module per
//! area: `limits` runs `auditlog_server::serve` on a loopback port, `openapi`
//! checks the OpenAPI description against the routes in the source and the
//! wire types. The tests share this process: each builds its own state and
//! store in a temporary directory, and none touches process-wide settings.

mod limits;
mod openapi;
