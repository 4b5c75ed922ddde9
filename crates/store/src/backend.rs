//! `Store`: the role traits combined, with what a server asks of a backend
//! as a whole. Apart from the crate root, which defines the roles it
//! combines, so that the root does not use the modules that use it.

use crate::{
    Directory, Erasures, EventAppender, EventReader, ExportJobs, Facets, Holds, LogStreams,
    PersonalPaths, Removals, Result, Retention, RootLogStore, Sessions, Taxonomies, TreeStore,
    TwoFactor, Users, WriteHealth,
};
use async_trait::async_trait;

/// Everything a server needs from one backend.
#[async_trait]
pub trait Store:
    EventAppender
    + EventReader
    + Directory
    + Sessions
    + Facets
    + ExportJobs
    + TreeStore
    + LogStreams
    + RootLogStore
    + PersonalPaths
    + Removals
    + Holds
    + Retention
    + Taxonomies
    + TwoFactor
    + Erasures
    + Users
{
    /// Whether the storage answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;
    /// How the last append transaction went (for `/readyz`).
    fn write_health(&self) -> WriteHealth {
        WriteHealth::Ok
    }
    /// Finishes queued writes and stops the writer; later appends fail.
    async fn shutdown(&self);
}
