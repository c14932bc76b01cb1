//! `polo replicate` and `polo replication-token`: copying changes between
//! instances from the command line, and the tokens peers authenticate with.
//!
//! A one-shot run copies until the source's head at the time it catches up
//! and exits 0; `--continuous` follows until Ctrl-C. Progress goes to stderr
//! once a second; `--json` prints only the final status on stdout. Either
//! can be interrupted at any moment: the target's checkpoint moves only with
//! the data, so the next run resumes where the data is.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use polo_replication::{Control, Handle, HttpPeer, Peer, ReplicateError, Spec, Status};
use polo_store::Store;

use crate::Outcome;
use crate::cli::{ReplicateArgs, ReplicationTokenCommand};
use crate::config::Config;

/// `polo replicate`.
pub fn run(config: &Config, args: &ReplicateArgs) -> anyhow::Result<Outcome> {
    if args.source == args.target {
        bail!("--source and --target are the same ({})", args.source);
    }
    let mut local: Option<Arc<dyn Store>> = None;
    let mut peer = |url: &str, token: Option<&str>, flag: &str| -> anyhow::Result<Peer> {
        if url == "local" {
            if local.is_none() {
                local = Some(config.open_store()?);
            }
            return Ok(Peer::Local(local.clone().context("the local store is open")?));
        }
        let token = token.with_context(|| {
            format!("--{flag} {url} needs its replication token (--{flag}-token or POLO_{}_TOKEN)", flag.to_uppercase())
        })?;
        HttpPeer::new(url, token).map(Peer::Http).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
    };
    let source = peer(&args.source, args.source_token.as_deref(), "source")?;
    let target = peer(&args.target, args.target_token.as_deref(), "target")?;
    let page_points = args.page_points.unwrap_or(polo_replication::task::DEFAULT_PAGE_POINTS);
    let mut specs = vec![Spec {
        name: format!("{} -> {}", args.source, args.target),
        source: source.clone(),
        target: target.clone(),
        users: args.users.clone(),
        continuous: args.continuous,
        page_points,
    }];
    if args.bidirectional {
        specs.push(Spec {
            name: format!("{} -> {}", args.target, args.source),
            source: target,
            target: source,
            users: args.users.clone(),
            continuous: args.continuous,
            page_points,
        });
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    let json = args.json;
    runtime.block_on(async move {
        let handles: Vec<Handle> = specs.iter().map(Handle::new).collect();
        let mut tasks = Vec::new();
        for (spec, handle) in specs.into_iter().zip(&handles) {
            tasks.push(tokio::spawn(polo_replication::run(spec, handle.clone())));
        }
        let progress = (!json).then(|| {
            let handles = handles.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    for status in handles.iter().map(Handle::status) {
                        eprintln!("{}", progress_line(&status));
                    }
                }
            })
        });
        let interrupt = {
            let handles = handles.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!(
                        "interrupted: stopping after the page in flight (the checkpoint moves only with the data)"
                    );
                    for h in &handles {
                        h.send(Control::Cancel);
                    }
                }
            })
        };
        let mut failed = None;
        for task in tasks {
            match task.await.context("a replication task panicked")? {
                Ok(_) | Err(ReplicateError::Cancelled) => {}
                Err(e) => failed = Some(e),
            }
        }
        interrupt.abort();
        if let Some(p) = progress {
            p.abort();
        }
        let statuses: Vec<Status> = handles.iter().map(Handle::status).collect();
        if json {
            println!("{}", serde_json::to_string_pretty(&statuses)?);
        } else {
            for s in &statuses {
                eprintln!("{}", progress_line(s));
            }
        }
        match failed {
            Some(e) => Err(anyhow::Error::new(e).context("replication failed")),
            None => Ok(Outcome::Success),
        }
    })
}

fn progress_line(s: &Status) -> String {
    let mut line = format!(
        "{}: {:?}, {} changes and {} points applied ({:.0} points/s), lag {} changes / {:.1} s",
        s.name, s.state, s.applied_changes, s.applied_points, s.points_per_second, s.lag_changes, s.lag_seconds
    );
    if let Some(e) = &s.last_error {
        line.push_str(&format!("; last error: {e}"));
    }
    line
}

/// `polo replication-token`.
pub fn tokens(config: &Config, command: &ReplicationTokenCommand) -> anyhow::Result<Outcome> {
    let store = config.open_store()?;
    match command {
        ReplicationTokenCommand::Create { label } => {
            let (token, hash) = polo_server::auth::new_token();
            let stored = store.create_replication_token(label.trim(), &hash).context("cannot store the token")?;
            eprintln!("created replication token {}; it is shown only now:", stored.id);
            println!("{token}");
        }
        ReplicationTokenCommand::List { json } => {
            let tokens = store.list_replication_tokens()?;
            let at = |ms: i64| polo_domain::Timestamp(ms).to_string();
            if *json {
                let rows: Vec<_> = tokens
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "id": t.id, "label": t.label, "created": at(t.created), "last_used": t.last_used.map(at),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for t in &tokens {
                    let last = t.last_used.map_or_else(|| "never used".to_owned(), |l| format!("last used {}", at(l)));
                    println!("{:>5}  {:<32} {}", t.id, t.label, last);
                }
            }
        }
        ReplicationTokenCommand::Revoke { id } => {
            if !store.revoke_replication_token(*id)? {
                bail!("there is no replication token {id} (see `polo replication-token list`)");
            }
            eprintln!("revoked replication token {id}; peers using it are refused from their next request");
        }
    }
    Ok(Outcome::Success)
}
