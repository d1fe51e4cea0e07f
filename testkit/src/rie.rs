//! AWS Lambda Runtime Interface Emulator (RIE) with extensions in /opt.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::PeerProcess;
use crate::{free_port, http_client, peer_bin, running_as_root, temp_dir};

/// What the emulated Lambda function runs.
#[derive(Clone, Debug, Default)]
pub struct RieConfig {
    /// The function: an executable implementing the Runtime API (a custom
    /// runtime `bootstrap`), run by RIE with the environment below plus
    /// RIE's own (`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`, ...).
    pub bootstrap: PathBuf,
    /// Executables copied to `/opt/extensions/<file name>` (mode 0755); RIE
    /// starts each as an external extension.
    pub extensions: Vec<PathBuf>,
    /// Environment of RIE, the function and the extensions (nothing else is
    /// inherited from the test process but `PATH`).
    pub env: Vec<(String, String)>,
    /// Extra files: (path relative to `/opt`, source file to copy there).
    pub files: Vec<(PathBuf, PathBuf)>,
}

/// A running RIE; stopped (SIGTERM, then SIGKILL) on drop.
///
/// It runs in a private mount namespace where a temporary directory is
/// bind-mounted over `/opt` (`unshare --mount` as root, else
/// `unshare --user --map-root-user --mount`). RIE initializes lazily: the
/// extensions register and the function starts on the first invoke. On
/// SIGTERM the extensions get a `SHUTDOWN` event whose `shutdownReason` is
/// `SandboxTerminated` (not one of Lambda's `spindown|timeout|failure`).
pub struct Rie {
    process: PeerProcess,
    emulator_port: u16,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Rie {
    /// Lays out `/opt` from `cfg`, starts RIE with the Runtime API on
    /// 127.0.0.1:P1 and the invoke endpoint on 127.0.0.1:P2, and waits until
    /// P2 accepts connections.
    pub async fn start(cfg: RieConfig) -> Rie {
        let rie = peer_bin("aws-lambda-rie");
        let (api_port, emulator_port) = (free_port(), free_port());
        let dir = temp_dir("rie");
        let opt = dir.path().join("opt");
        layout_opt(&opt, &cfg);
        let bootstrap = std::path::absolute(&cfg.bootstrap).expect("absolute bootstrap path");

        // unshare keeps the pid (no --fork); sh binds /opt inside the new
        // namespace, then setpriv sets the death signal (after unshare: a new
        // user namespace would clear it) and becomes RIE.
        let mut cmd = Command::new("setsid");
        cmd.args(["--", "unshare"]);
        if !running_as_root() {
            cmd.args(["--user", "--map-root-user"]);
        }
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mount --bind "$0" /opt && exec setpriv --pdeathsig KILL -- "$@""#)
            .arg(&opt)
            .arg(&rie)
            .arg("--runtime-api-address")
            .arg(format!("127.0.0.1:{api_port}"))
            .arg("--runtime-interface-emulator-address")
            .arg(format!("127.0.0.1:{emulator_port}"))
            .arg(&bootstrap)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(cfg.env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path());
        let log = dir.path().join("rie.log");
        let mut process = PeerProcess::spawn("RIE", cmd, log, "TERM", Duration::from_secs(10));
        let addr = format!("127.0.0.1:{emulator_port}");
        process
            .wait_ready(Duration::from_secs(30), async || {
                tokio::net::TcpStream::connect(&addr).await.is_ok()
            })
            .await;
        Rie {
            process,
            emulator_port,
            client: http_client(),
            _dir: dir,
        }
    }

    /// Invokes the function with `payload`; returns the HTTP status and body.
    pub async fn invoke(&self, payload: &serde_json::Value) -> (u16, String) {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/function/invocations",
            self.emulator_port
        );
        let resp = self
            .client
            .post(&url)
            .json(payload)
            .send()
            .await
            .unwrap_or_else(|e| panic!("invoke {url}: {e}; RIE output:\n{}", self.logs()));
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// Sends SIGTERM (RIE then sends SHUTDOWN to the extensions, gives them
    /// 2 s, and kills what is left), waits for RIE to exit, and returns
    /// everything RIE, the function and the extensions printed.
    pub async fn shutdown(mut self) -> String {
        self.process.stop();
        self.process.logs()
    }

    /// The invoke endpoint's address, `127.0.0.1:P2`.
    pub fn emulator_addr(&self) -> String {
        format!("127.0.0.1:{}", self.emulator_port)
    }

    /// Everything RIE, the function and the extensions printed so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Process id of RIE.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// Creates `opt/extensions` with the extensions (mode 0755) and `cfg.files`.
fn layout_opt(opt: &Path, cfg: &RieConfig) {
    let extensions = opt.join("extensions");
    std::fs::create_dir_all(&extensions).expect("create opt/extensions");
    for ext in &cfg.extensions {
        let name = ext
            .file_name()
            .unwrap_or_else(|| panic!("extension {} has no file name", ext.display()));
        copy(ext, &extensions.join(name));
        std::fs::set_permissions(
            extensions.join(name),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod extension");
    }
    for (relative, source) in &cfg.files {
        if relative.is_absolute() {
            panic!(
                "RieConfig.files: {} must be relative to /opt",
                relative.display()
            );
        }
        let dest = opt.join(relative);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).expect("create directory under opt");
        }
        copy(source, &dest);
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
}
