//! `vault-aws-demo`: the whole vault-aws story, end to end, with the real
//! binaries against local peers. Run it with `scripts/demo`, which installs
//! the peers and builds everything first.
//!
//! It starts OpenBao, moto and PostgreSQL on free 127.0.0.1 ports (testkit)
//! and runs four steps, printing what each did and checked (secrets masked):
//!
//! 1. Provision: a CloudFormation `Custom::VaultAuth` Create event goes to
//!    the AppRole Lambda (`bootstrap`) under the Lambda Runtime Interface
//!    Emulator; the response PUT and the S3 object are shown.
//! 2. Consume: `vault-exec` starts as an ECS task would and execs a child
//!    that prints which variables it received.
//! 3. Serve: the Lambda extension with the example function under the RIE;
//!    a cached second read; dynamic PostgreSQL credentials renewed.
//! 4. Replicate: the replication Lambda copies KV to Secrets Manager; a
//!    second run writes nothing; a change is replicated with its version tag.
//!
//! Exit status: 0 when every check held, 1 when one failed, 2 when the
//! demo could not start, 130 on Ctrl-C / SIGTERM. Everything it started is
//! stopped in every case (peers stop when their testkit handle is dropped).

mod consume;
mod env;
mod listeners;
mod provision;
mod replicate;
mod report;
mod serve;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use crate::env::{Bins, World};
use crate::report::{fact, secs, tail};

/// The longest any one step may take before it counts as failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// The message of the last panic (testkit panics when a peer misbehaves).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned());
        let at = info
            .location()
            .map(|l| format!(" (at {}:{})", l.file(), l.line()))
            .unwrap_or_default();
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{message}{at}"));
    }));
}

/// Runs `fut` with a deadline; a panic or timeout becomes an error naming `what`.
async fn guarded<T>(what: &str, fut: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    match tokio::time::timeout(STEP_TIMEOUT, AssertUnwindSafe(fut).catch_unwind()).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => {
            let message = LAST_PANIC
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_default();
            Err(anyhow::anyhow!("{what} failed: {}", tail(&message, 40)))
        }
        Err(_) => Err(anyhow::anyhow!(
            "{what} did not finish within {}",
            secs(STEP_TIMEOUT)
        )),
    }
}

/// How one step ended.
struct Outcome {
    name: &'static str,
    result: &'static str,
    took: Duration,
}

async fn step<T>(
    n: usize,
    name: &'static str,
    what: &str,
    outcomes: &mut Vec<Outcome>,
    fut: impl Future<Output = anyhow::Result<T>>,
) -> Option<T> {
    report::header(n, name, what);
    let started = Instant::now();
    let result = guarded(&format!("step {n} ({name})"), fut).await;
    let took = started.elapsed();
    let (value, result) = match result {
        Ok(v) => (Some(v), "ok"),
        Err(e) => {
            println!("    FAILED  {e:#}");
            (None, "FAILED")
        }
    };
    outcomes.push(Outcome { name, result, took });
    value
}

async fn demo(bins: Bins) -> ExitCode {
    println!(
        "vault-aws demo: our real binaries against local OpenBao, moto (AWS), PostgreSQL and the Lambda RIE"
    );
    let started = Instant::now();
    let world = guarded("starting the peers (OpenBao, moto, PostgreSQL)", async {
        let (bao, moto, pg) = env::start_peers().await;
        Ok(World::setup(bao, moto, pg).await)
    })
    .await;
    let world = match world {
        Ok(w) => w,
        Err(e) => {
            println!("\nFAILED  {e:#}\n(run scripts/install-peers if a peer is missing)");
            return ExitCode::from(2);
        }
    };
    println!();
    println!("peers ({}):", secs(started.elapsed()));
    fact(format!(
        "OpenBao dev server {} (root token used only to set up)",
        world.bao.addr()
    ));
    fact(format!(
        "moto (S3, Secrets Manager) {}",
        world.moto.endpoint()
    ));
    fact(format!("PostgreSQL 127.0.0.1:{}", world.pg.port()));
    fact(
        "OpenBao: KV secret/shop/dev/{db,app}, policy shop-dev, AppRole auth, database engine role shop-dev (4 s leases)",
    );

    let mut outcomes = Vec::new();
    let provisioned = step(
        1,
        "Provision",
        "CloudFormation Custom::VaultAuth -> AppRole Lambda -> role in OpenBao, credentials in S3",
        &mut outcomes,
        provision::run(&world, &bins),
    )
    .await;
    match &provisioned {
        Some(p) => {
            step(
                2,
                "Consume",
                "vault-exec as an ECS task's entrypoint -> secrets in the app's environment",
                &mut outcomes,
                consume::run(&world, &bins, p),
            )
            .await;
        }
        None => {
            report::header(2, "Consume", "skipped: it needs the credentials of step 1");
            outcomes.push(Outcome {
                name: "Consume",
                result: "skipped",
                took: Duration::ZERO,
            });
        }
    }
    step(
        3,
        "Serve",
        "Lambda extension + example function -> proxy, cache, renewed database lease",
        &mut outcomes,
        serve::run(&world, &bins),
    )
    .await;
    step(
        4,
        "Replicate",
        "replication Lambda -> Secrets Manager; idempotent; versioned updates",
        &mut outcomes,
        replicate::run(&world, &bins),
    )
    .await;

    let stopping = Instant::now();
    drop(world);
    println!();
    println!(
        "stopped OpenBao, moto and PostgreSQL ({})",
        secs(stopping.elapsed())
    );
    println!();
    println!("  step          result   time");
    for (i, o) in outcomes.iter().enumerate() {
        println!(
            "  {}. {:<10} {:<8} {}",
            i + 1,
            o.name,
            o.result,
            secs(o.took)
        );
    }
    println!("  total                  {}", secs(started.elapsed()));
    println!();
    if outcomes.iter().all(|o| o.result == "ok") {
        println!("demo: every step checked out");
        ExitCode::SUCCESS
    } else {
        println!("demo: FAILED (see the steps above)");
        ExitCode::FAILURE
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    install_panic_hook();
    let bins = match Bins::locate() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("vault-aws-demo: {e:#}");
            return ExitCode::from(2);
        }
    };
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vault-aws-demo: cannot listen for SIGTERM: {e}");
            return ExitCode::from(2);
        }
    };
    let signal = tokio::select! {
        code = demo(bins) => return code,
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term.recv() => "SIGTERM",
    };
    // The demo's future (and every peer, emulator and child in it) was dropped above.
    println!("\n{signal}: stopped everything the demo started; exiting");
    ExitCode::from(130)
}
