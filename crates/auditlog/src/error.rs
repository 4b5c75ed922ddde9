//! What every command returns. A failure carries its cause (the store's
//! error, the operating system's) and, through `anyhow::Context`, what was
//! being done; `main` prints the whole chain on one line, outermost first
//! ("cannot listen on 0.0.0.0:80: Permission denied (os error 13)"). Input
//! the user can fix fails with a message that says how (`anyhow!`/`bail!`),
//! and has no cause to add.

pub type CliResult<T = ()> = anyhow::Result<T>;
