//! What every scenario returns: any failure, boxed, so that the run stops
//! with its message. A module of its own so that the scenarios and `main`
//! share it without using each other.

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;
