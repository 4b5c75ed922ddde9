//! What each subcommand does. They work while a server runs on the same
//! store: what they create is usable at once.

use crate::admin::{
    create_named_key, create_user, find_account, list_keys, parse_expiry, revoke_key,
};
use crate::backend::open_store;
use crate::cli::{AccountCommand, Cli, Command, ConfigCommand, KeyCommand, UserCommand};
use crate::config::{Config, Loaded};
use crate::error::CliResult;
use anyhow::{anyhow, bail, Context};
use auditlog_core::bundle::WitnessPolicy;
use auditlog_core::cosignature::CosignatureVerifier;
use auditlog_core::note::NoteVerifier;
use auditlog_core::{AccountName, Email, Timestamp};
use auditlog_server::exports::{worker, ExportSettings, Exports};
use auditlog_server::root_log::RootLog;
use auditlog_server::signer::CheckpointSigner;
use auditlog_server::{signing_key, AppState};
use auditlog_store::{Role, Store};
use std::io::Read;
use std::sync::Arc;

pub async fn run(cli: Cli, loaded: &Loaded) -> CliResult {
    match cli.command {
        // Names both of its stores itself; the global store flags do not apply.
        Command::Copy { from, to } => crate::copy::run(&from, &to).await,
        // Offline: needs no store.
        Command::VerifyExport {
            file,
            keys,
            witnesses,
            quorum,
        } => verify_export(&file, &keys, &witnesses, quorum),
        // A client of a server's API: needs no store.
        Command::Send(command) => crate::send::run(*command).await,
        Command::Tail(command) => crate::tail::run(*command).await,
        // Another service with files of its own: needs no store.
        Command::Witness { command } => crate::witness::run(command, shutdown_signal()).await,
        // A client of a server's API: needs no store.
        Command::Monitor(command) => crate::monitor::run(*command, shutdown_signal()).await,
        Command::Config {
            command: ConfigCommand::Example,
        } => {
            print!("{}", crate::config::example());
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Show,
        } => {
            print!("{}", crate::config::show(loaded));
            Ok(())
        }
        command => run_on_store(&loaded.config, command).await,
    }
}

async fn run_on_store(config: &Config, command: Command) -> CliResult {
    if let Command::Serve { .. } = command {
        // Before the store opens, so that a start that fails says what it
        // was configured with. `Config`'s Debug redacts its secrets.
        tracing::info!(?config, "starting");
    }
    let store = open_store(config).await?;
    let result = match command {
        Command::Serve {
            demo,
            #[cfg(debug_assertions)]
            export_test_page_delay_ms,
            #[cfg(debug_assertions)]
            prune_test_batch_pause_ms,
        } => {
            #[cfg(debug_assertions)]
            let (page_delay, batch_pause) = (
                std::time::Duration::from_millis(export_test_page_delay_ms),
                std::time::Duration::from_millis(prune_test_batch_pause_ms),
            );
            #[cfg(not(debug_assertions))]
            let (page_delay, batch_pause) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
            serve(
                store.clone(),
                config,
                demo,
                config.export_settings(page_delay),
                batch_pause,
            )
            .await
        }
        Command::Export(command) => crate::export::run(store.clone(), *command).await,
        Command::Search(command) => crate::search::run(store.clone(), *command).await,
        Command::Verify { keys } => {
            let mut verifiers = keys
                .iter()
                .map(|key| NoteVerifier::parse(key).map_err(|e| anyhow!("--key {key:?}: {e}")))
                .collect::<CliResult<Vec<_>>>()?;
            if verifiers.is_empty() {
                let path = config.signing_key_path();
                let own = path
                    .exists()
                    .then(|| signing_key::load(&path).map(|s| s.verifier()))
                    .transpose()
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("cannot read the signing key {}", path.display()))?;
                verifiers.extend(own);
            }
            crate::verify::run(store.as_ref(), &verifiers).await
        }
        Command::Erase { account, subject } => {
            let account = find_account(store.as_ref(), &account).await?;
            crate::erase::run(store.as_ref(), config, &account, &subject).await
        }
        Command::VerifyExport { .. }
        | Command::Config { .. }
        | Command::Send(_)
        | Command::Tail(_)
        | Command::Monitor(_)
        | Command::Witness { .. } => Ok(()),
        Command::Account {
            command: AccountCommand::Create { name },
        } => {
            let name = AccountName::parse(&name).map_err(|e| anyhow!(e.message))?;
            store
                .create_account(name.as_ref())
                .await
                .with_context(|| format!("cannot create account {name:?}"))?;
            println!("created account {name}");
            Ok(())
        }
        Command::Key {
            command:
                KeyCommand::Create {
                    account,
                    scopes,
                    name,
                    expires,
                },
        } => {
            let account = find_account(store.as_ref(), &account).await?;
            let expires_at = expires
                .map(|text| parse_expiry(&text, Timestamp::now()))
                .transpose()?;
            let name = name.unwrap_or_else(|| "cli".into());
            let secret =
                create_named_key(store.as_ref(), &account, &name, &scopes, expires_at).await?;
            println!("{secret}");
            Ok(())
        }
        Command::Key {
            command: KeyCommand::List { account },
        } => {
            let account = find_account(store.as_ref(), &account).await?;
            print!("{}", list_keys(store.as_ref(), &account).await?);
            Ok(())
        }
        Command::Key {
            command: KeyCommand::Revoke { account, id },
        } => {
            let account = find_account(store.as_ref(), &account).await?;
            revoke_key(store.as_ref(), &account, &id).await?;
            println!("revoked {id} in account {}", account.name);
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    account,
                    email,
                    role,
                },
        } => {
            let account = find_account(store.as_ref(), &account).await?;
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow!("unknown role {role:?}; use admin, auditor or member"))?;
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            let email = Email::parse(&email).map_err(|e| anyhow!(e.message))?;
            create_user(store.as_ref(), &account, &email, password, role).await?;
            println!(
                "created {} {email} in account {}",
                role.as_str(),
                account.name
            );
            Ok(())
        }
        Command::User { command } => crate::admin::user_command(store.as_ref(), command).await,
        Command::Retention { command } => {
            let settings = config
                .retention_settings()
                .map_err(anyhow::Error::msg)
                .context("cannot read the retention settings")?;
            crate::retention::run_retention(store.as_ref(), &settings, command).await
        }
        Command::Hold { command } => crate::retention::run_hold(store.as_ref(), command).await,
        Command::Copy { .. } => Err(anyhow!("copy names its stores with --from and --to")),
    };
    store.shutdown().await;
    result
}

/// Checks an export bundle offline against the pinned verifier keys and,
/// with `--witness`, the pinned witnesses' quorum.
fn verify_export(
    file: &std::path::Path,
    keys: &[String],
    witnesses: &[String],
    quorum: Option<usize>,
) -> CliResult {
    let verifiers = keys
        .iter()
        .map(|key| NoteVerifier::parse(key).map_err(|e| anyhow!("--key {key:?}: {e}")))
        .collect::<CliResult<Vec<_>>>()?;
    let witness_keys = witnesses
        .iter()
        .map(|key| CosignatureVerifier::parse(key).map_err(|e| anyhow!("--witness {key:?}: {e}")))
        .collect::<CliResult<Vec<_>>>()?;
    let quorum = quorum.unwrap_or(witness_keys.len() / 2 + usize::from(!witness_keys.is_empty()));
    if quorum > witness_keys.len() {
        bail!(
            "--quorum {quorum} is more than the {} --witness keys given: no bundle could pass",
            witness_keys.len()
        );
    }
    let policy = WitnessPolicy {
        witnesses: &witness_keys,
        quorum,
    };
    let policy = (!witness_keys.is_empty()).then_some(&policy);
    let archive = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    // `with_context` keeps the problem's own causes (an entry's leaf error,
    // a signature's) for the `{:#}` that prints it.
    let report = auditlog_core::bundle::verify_with(&archive, &verifiers, policy)
        .with_context(|| format!("{} does NOT verify", file.display()))?;
    println!(
        "OK: {} entries of {} verify against the checkpoint of tree size {} signed by {}{}",
        report.entries,
        report.origin,
        report.tree_size,
        report.key,
        if report.filters_checked {
            ", and all match the bundle's filters"
        } else {
            ""
        }
    );
    match &report.root {
        Some(root) if policy.is_some() => println!(
            "OK: the checkpoint is leaf {} of the root checkpoint of size {}, cosigned by {} of the {} witnesses named ({}; {quorum} required)",
            root.leaf_index,
            root.tree_size,
            root.cosigners.len(),
            witness_keys.len(),
            root.cosigners.join(", ")
        ),
        Some(root) => println!(
            "the checkpoint is leaf {} of the root checkpoint of size {} (its cosignatures were not checked: name the witnesses with --witness)",
            root.leaf_index, root.tree_size
        ),
        None => println!("the bundle carries no root checkpoint (no witness cosignature)"),
    }
    Ok(())
}

/// The checkpoint signer with the key from the configured file (created on
/// first start), remembering its last signatures beside the key.
fn checkpoint_signer(store: Arc<dyn Store>, config: &Config) -> CliResult<Arc<CheckpointSigner>> {
    let key_path = config.signing_key_path();
    let key = signing_key::load_or_create(&key_path, &config.log_name)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("cannot load the signing key {}", key_path.display()))?;
    let heads = key_path.with_file_name(signing_key::HEADS_FILE);
    let signer = CheckpointSigner::new(store, key, &config.log_name, Some(heads))
        .map_err(anyhow::Error::msg)
        .context("cannot start the checkpoint signer")?;
    Ok(Arc::new(signer))
}

async fn serve(
    store: Arc<dyn Store>,
    config: &Config,
    demo: bool,
    export_settings: ExportSettings,
    prune_batch_pause: std::time::Duration,
) -> CliResult {
    if demo {
        crate::demo::ensure_demo(store.as_ref()).await?;
    }
    let signer = checkpoint_signer(store.clone(), config)?;
    let witness_settings = config.witness_settings().map_err(anyhow::Error::msg)?;
    let root_head = config
        .signing_key_path()
        .with_file_name(signing_key::ROOT_HEAD_FILE);
    let root_log = Arc::new(
        RootLog::new(
            store.clone(),
            signer.note_signer().clone(),
            &config.log_name,
            witness_settings,
            Some(root_head),
        )
        .map_err(anyhow::Error::msg)
        .context("cannot start the root log's submitter")?,
    );
    let listen = &config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener
        .local_addr()
        .context("cannot read the listening address")?;
    // Tests and scripts read this line to find a port chosen with :0.
    println!("auditlog listening on http://{address}");
    tracing::info!(%address, "serving");
    let exports = Exports::new(export_settings.clone());
    let stream_settings = config
        .stream_settings()
        .map_err(anyhow::Error::msg)
        .context("cannot set up log streams")?;
    let mut retention_settings = config
        .retention_settings()
        .map_err(anyhow::Error::msg)
        .context("cannot set up retention")?;
    let erasure_settings = config
        .erasure_settings()
        .map_err(anyhow::Error::msg)
        .context("cannot set up erasure")?;
    retention_settings.batch_pause = prune_batch_pause;
    let state = AppState::new(store.clone())
        .with_retention(retention_settings.clone())
        .with_erasure(erasure_settings.clone())
        .with_streams(stream_settings.clone())
        .with_exports(exports.clone())
        .with_signer(signer.clone())
        .with_root_log(root_log.clone())
        .with_limits(config.limits.clone());
    // One stop signal for the HTTP server, the export worker and the signer.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stop = Arc::new(stop);
    let signing = tokio::spawn(signer.clone().run(stopped.clone()));
    let witnessing = tokio::spawn(root_log.clone().run(stopped.clone()));
    let stopped_streams = stopped.clone();
    let pruning = auditlog_server::retention::worker::spawn(
        store.clone(),
        retention_settings,
        stopped.clone(),
    );
    let erasing =
        auditlog_server::erasure::worker::spawn(store.clone(), erasure_settings, stopped.clone());
    let mut workers = worker::spawn(
        store.clone(),
        export_settings,
        Some(signer.clone()),
        Some(root_log.clone()),
        exports.wakeup,
        stopped,
    );
    let delivering =
        auditlog_server::streams::worker::spawn(store.clone(), stream_settings, stopped_streams);
    let stop_on_signal = stop.clone();
    let served = auditlog_server::serve(listener, state, async move {
        shutdown_signal().await;
        stop_on_signal.send_replace(true);
    })
    .await;
    stop.send_replace(true);
    tracing::info!("stopped accepting requests; letting exports reach a safe point");
    while workers.join_next().await.is_some() {}
    // Runners release their streams, so another server takes them at once.
    let _ = delivering.await;
    let _ = pruning.await;
    let _ = erasing.await;
    // Sign what the last requests appended before the writer stops.
    let _ = signing.await;
    let _ = witnessing.await;
    tracing::info!("draining the writer");
    served.context("the server failed")
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
