//! The command line exactly as the user typed it. Resolution against the
//! config file, the environment and the defaults happens in [`crate::config`].
//!
//! The subcommand and flag names are a contract that the docs and the checks
//! rely on: change them only with a CHANGELOG entry.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// polo: self-hosted location history.
#[derive(Debug, Parser)]
#[command(name = "polo", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where polo keeps its database and reject files [default: the per-user data directory].
    #[arg(long, global = true, env = "POLO_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The store: sqlite://PATH or postgres://USER@HOST:PORT/DATABASE [default: sqlite://DATA_DIR/polo.sqlite].
    #[arg(long, global = true, env = "POLO_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Configuration file (TOML) [default: DATA_DIR/polo.toml when it exists].
    #[arg(long, global = true, env = "POLO_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, env = "POLO_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (with the embedded store unless --database-url names another).
    Serve(Box<ServeArgs>),
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Import location history files (format detected from content).
    Import(ImportArgs),
    /// Export a user's points.
    Export(ExportArgs),
    /// Delete a user's points: a range, a device, a rectangle, or all of them. Deletes are kept
    /// as tombstones: they replicate, and a re-import leaves the points out.
    Delete(DeleteArgs),
    /// Manage device tokens (for phone apps and scripts).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Back up the store (points, derived timeline, cursors) to a directory or an object store;
    /// `polo backup list` and `polo backup verify` inspect backups.
    Backup(BackupArgs),
    /// Restore the store from a backup; the instance is ready to serve as soon as this ends.
    Restore(RestoreArgs),
    /// Copy changes from one instance to another (XDCR-style): once, or continuously; one way or
    /// both. Idempotent and resumable: progress is checkpointed on the target with the data.
    Replicate(ReplicateArgs),
    /// Manage replication tokens: what a peer instance authenticates with to read this one's
    /// change feed and apply changes to it (and nothing else).
    #[command(subcommand, name = "replication-token")]
    ReplicationToken(ReplicationTokenCommand),
    /// Photos and videos: read their times and positions, propose positions from the location
    /// history for those without one, and write them as XMP sidecars (originals are never changed).
    #[command(subcommand)]
    Photos(PhotosCommand),
    /// Show or renew the store's replication epoch. Renew it once on a copy restored with
    /// another tool than `polo restore` (pg_restore, a PostgreSQL base backup), before it serves.
    #[command(subcommand)]
    Epoch(EpochCommand),
}

#[derive(Debug, Subcommand)]
pub enum PhotosCommand {
    /// List the photos and videos under a folder with their capture time and position, and the
    /// position the location history proposes for each photo without one, with its confidence.
    /// Writes nothing. Unreadable files are listed with the reason (exit code 1).
    Scan(PhotosArgs),
    /// Write the proposed positions of photos without one as XMP sidecars (`IMG_1.jpg.xmp`), for
    /// photo managers to read. Idempotent; sidecars of other programs are never overwritten.
    Geotag(GeotagArgs),
    /// Remove the XMP sidecars polo wrote under a folder (and nothing else).
    Undo {
        /// A folder (walked recursively) or a single photo.
        path: PathBuf,
        /// Whose library marks these photos' positions as proposals again (as the review page's
        /// undo does); without it, only the sidecars are removed.
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct PhotosArgs {
    /// A folder (walked recursively; hidden folders skipped) or a single photo.
    pub path: PathBuf,
    /// Whose location history places the photos.
    #[arg(long)]
    pub user: String,
    /// Print one JSON object per file instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only list the photos: do not add them to the user's library (the timeline and the map).
    #[arg(long)]
    pub no_save: bool,
}

#[derive(Debug, Args)]
pub struct GeotagArgs {
    #[command(flatten)]
    pub photos: PhotosArgs,
    /// Write only proposals at least this confident: high, medium or low.
    #[arg(long, default_value = "high", value_name = "LEVEL")]
    pub min_confidence: String,
    /// Say what would be written, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum EpochCommand {
    /// Print the epoch, the instance id, the last change and the epoch history.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make this store a new instance with a new epoch, forked at its last change, as `polo
    /// restore` does: for a database restored with PostgreSQL's tools. Stop every node first.
    Renew {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ReplicateArgs {
    /// Where changes come from: a polo base URL (http[s]://host[:port]) or `local` (this data
    /// directory's store).
    #[arg(long, value_name = "URL|local")]
    pub source: String,
    /// Where they are applied: a polo base URL or `local`.
    #[arg(long, value_name = "URL|local")]
    pub target: String,
    /// The source's replication token.
    #[arg(long, env = "POLO_SOURCE_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub source_token: Option<String>,
    /// The target's replication token.
    #[arg(long, env = "POLO_TARGET_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub target_token: Option<String>,
    /// Keep following the source after catching up, until interrupted.
    #[arg(long)]
    pub continuous: bool,
    /// Only this user's data (repeatable) [default: everyone's].
    #[arg(long = "user", value_name = "NAME")]
    pub users: Vec<String>,
    /// Also replicate target → source (two pulls; neither sends a change back to where it came from).
    #[arg(long)]
    pub bidirectional: bool,
    /// Points per page [default: 50000].
    #[arg(long, value_name = "N")]
    pub page_points: Option<usize>,
    /// Print only a JSON summary on stdout (no progress lines).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReplicationTokenCommand {
    /// Create a replication token; prints only the token.
    Create {
        /// A note to tell tokens apart ("staging pulls from production").
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List replication tokens.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a replication token.
    Revoke {
        /// The token's id (from `list`).
        id: i64,
    },
}

/// Where backups are and how to reach them.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Service endpoint for s3:// (B2, Ceph, MinIO, …) or az:// destinations; an http:// endpoint
    /// is allowed without TLS [default: AWS_ENDPOINT_URL, else the provider's].
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Blocks transferred at once [default: 8].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
    #[command(flatten)]
    pub create: BackupCreateArgs,
}

#[derive(Debug, Args)]
pub struct BackupCreateArgs {
    /// Destination: a directory, file:///DIR, s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX] or
    /// az://CONTAINER[/PREFIX]; credentials come from the providers' usual environment variables.
    #[arg(long, env = "POLO_BACKUP_TO", value_name = "DEST")]
    pub to: Option<String>,
    /// After the backup, keep only the last backup of each of the N most recent days (plus
    /// those --retain-monthly keeps), and delete blocks no kept backup needs [default: keep all].
    #[arg(long, env = "POLO_BACKUP_RETAIN_DAILY", value_name = "N")]
    pub retain_daily: Option<u32>,
    /// Keep the last backup of each of the M most recent months.
    #[arg(long, env = "POLO_BACKUP_RETAIN_MONTHLY", value_name = "M")]
    pub retain_monthly: Option<u32>,
    /// Block size, a multiple of 64K (e.g. 1M, 4M, 64M) [default: 4M].
    #[arg(long, value_name = "SIZE")]
    pub block_size: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Print only a JSON summary on stdout (no progress bar).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// List the backups at a destination, oldest first.
    List {
        /// Where the backups are (as for --to).
        #[arg(long, value_name = "DEST")]
        from: String,
        #[command(flatten)]
        remote: RemoteArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check a backup without restoring it: every block's hash, then SQLite's integrity check of
    /// the reassembled database.
    Verify {
        /// Where the backups are.
        #[arg(long, value_name = "DEST")]
        from: String,
        /// The backup to check [default: the newest].
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
        /// Print only a JSON summary on stdout (no progress bar).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Where the backups are (a directory or a URL, as for `polo backup --to`).
    #[arg(long, value_name = "DEST")]
    pub from: String,
    /// The backup to restore [default: the newest].
    #[arg(long)]
    pub id: Option<String>,
    /// Replace the store in a data directory that is not empty. Stop the server first.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Print only a JSON summary on stdout (no progress bar).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for a device (created if missing); prints only the token.
    Create {
        /// The user who owns the device.
        #[arg(long)]
        user: String,
        /// The device the token authenticates as.
        #[arg(long)]
        device: String,
        /// A note to tell tokens apart.
        #[arg(long, default_value = "")]
        label: String,
        /// What the token may do beyond ingesting as its device and reading that device's latest
        /// position: read, write, share, friends, devices, admin, or all (comma-separated or
        /// repeated). None, the default, is right for a phone.
        #[arg(long, value_delimiter = ',')]
        scope: Vec<String>,
    },
    /// List a user's tokens (never the secrets).
    List {
        /// Whose tokens.
        #[arg(long)]
        user: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id.
    Revoke {
        /// Whose token.
        #[arg(long)]
        user: String,
        /// The token's id (see `polo token list`).
        id: i64,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:8080].
    #[arg(long, env = "POLO_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Answer only requests for this Host (repeatable; port and case ignored). Requests for any
    /// other Host get no response: the connection is closed [default: any Host].
    #[arg(long = "allowed-host", env = "POLO_ALLOWED_HOSTS", value_name = "NAME", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Network (CIDR) of the clients allowed on every admin route (users, instance settings,
    /// replication tasks) and /metrics (repeatable); others get 403 [default: 127.0.0.0/8, ::1/128].
    #[arg(long = "admin-network", env = "POLO_ADMIN_NETWORKS", value_name = "CIDR", value_delimiter = ',')]
    pub admin_networks: Vec<String>,
    /// A reverse proxy (CIDR) whose X-Forwarded-For and X-Forwarded-Proto are believed (repeatable):
    /// from it the client is the forwarded address (for the back-off, --admin-network and access
    /// logs) and X-Forwarded-Proto: https makes session cookies Secure [default: none].
    #[arg(long = "trusted-proxy", env = "POLO_TRUSTED_PROXIES", value_name = "CIDR", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Access logs (JSON lines): off, stdout or a file path [default: stdout].
    #[arg(long, env = "POLO_ACCESS_LOG", value_name = "off|stdout|FILE")]
    pub access_log: Option<String>,
    /// TLS certificate chain (PEM); with --tls-key, polo terminates TLS itself.
    #[arg(long, env = "POLO_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "POLO_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// OwnTracks over MQTT: subscribe to this broker (mqtt://HOST:PORT) [default: no MQTT].
    #[arg(long, env = "POLO_MQTT_URL", value_name = "URL")]
    pub mqtt_url: Option<String>,
    /// User name for the MQTT broker.
    #[arg(long, env = "POLO_MQTT_USERNAME", value_name = "NAME")]
    pub mqtt_username: Option<String>,
    /// Password for the MQTT broker (prefer the environment variable).
    #[arg(long, env = "POLO_MQTT_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    pub mqtt_password: Option<String>,
    /// MQTT topic filter to subscribe to [default: owntracks/#].
    #[arg(long, env = "POLO_MQTT_TOPIC", value_name = "FILTER")]
    pub mqtt_topic: Option<String>,
    /// MQTT: republish points stored through HTTP (not those that came over MQTT) and zone
    /// enter/leave events to the broker, in OwnTracks topics (owntracks/USER/DEVICE, …/event)
    /// [default: off].
    #[arg(long, env = "POLO_MQTT_REPUBLISH")]
    pub mqtt_republish: bool,
    /// MQTT: announce every device to Home Assistant as a device_tracker (MQTT discovery under
    /// homeassistant/device_tracker/, positions on polo/USER/DEVICE/attributes) [default: off].
    #[arg(long, env = "POLO_MQTT_DISCOVERY")]
    pub mqtt_discovery: bool,
    /// Street names for places from an online geocoder: photon or nominatim (needs
    /// --geocoder-url). Asked for places only, at most once a second [default: none, no network].
    #[arg(long, env = "POLO_GEOCODER", value_name = "photon|nominatim")]
    pub geocoder: Option<String>,
    /// Base URL of the --geocoder server, e.g. https://photon.komoot.io (your own instance is kinder).
    #[arg(long, env = "POLO_GEOCODER_URL", value_name = "URL")]
    pub geocoder_url: Option<String>,
    /// Wrong passwords per client address and user name before the exponential back-off (429)
    /// starts; four times as many per address over all names, and for unknown device tokens.
    /// Never per user name alone: nobody can lock a user out from another address [default: 5].
    #[arg(long, env = "POLO_AUTH_FREE_FAILURES", value_name = "N")]
    pub auth_free_failures: Option<u32>,
    /// Continuously pull another polo instance's changes into this one (a base URL; needs
    /// --replicate-token). More, with names and filters: `[[replication]]` in the config file.
    #[arg(long, env = "POLO_REPLICATE_FROM", value_name = "URL")]
    pub replicate_from: Option<String>,
    /// The replication token of the --replicate-from instance.
    #[arg(long, env = "POLO_REPLICATE_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub replicate_token: Option<String>,
    /// Only this user's data from --replicate-from (repeatable) [default: everyone's].
    #[arg(long = "replicate-user", value_name = "NAME")]
    pub replicate_users: Vec<String>,
    /// Zones: fixes wait this many milliseconds before they are evaluated, so that fixes arriving
    /// out of order within it are taken in time order; later ones give past events only
    /// [default: 30000].
    #[arg(long, env = "POLO_ZONE_REORDER_WINDOW_MS", value_name = "MS")]
    pub zone_reorder_window_ms: Option<u64>,
    /// Fire `device.silent` when a device has sent nothing for this many hours [default: 12].
    #[arg(long, env = "POLO_SILENT_AFTER_HOURS", value_name = "HOURS", value_parser = clap::value_parser!(u32).range(1..=8760))]
    pub silent_after_hours: Option<u32>,
    /// Fire `device.battery_low` when a device's battery falls to this percent [default: 15].
    #[arg(long, env = "POLO_LOW_BATTERY_PERCENT", value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=95))]
    pub low_battery_percent: Option<u8>,
    /// Webhooks: the wait after a failed delivery, doubling with each further failure
    /// [default: 10000].
    #[arg(long, env = "POLO_WEBHOOK_FIRST_RETRY_MS", value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_first_retry_ms: Option<u64>,
    /// Webhooks: the longest wait between attempts [default: 3600000].
    #[arg(long, env = "POLO_WEBHOOK_MAX_RETRY_MS", value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_max_retry_ms: Option<u64>,
    /// Webhooks: attempts before a delivery is given up (dead letter) [default: 12].
    #[arg(long, env = "POLO_WEBHOOK_MAX_ATTEMPTS", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub webhook_max_attempts: Option<u32>,
    /// The instance's name in the web app (an admin may change it at runtime) [default: polo].
    #[arg(long, env = "POLO_INSTANCE_NAME", value_name = "NAME")]
    pub instance_name: Option<String>,
    /// The web map's raster tile URL template with {z}, {x}, {y}
    /// [default: https://tile.openstreetmap.org/{z}/{x}/{y}.png].
    #[arg(long, env = "POLO_TILE_URL", value_name = "URL")]
    pub tile_url: Option<String>,
    /// The attribution the tiles' licence asks for [default: © OpenStreetMap contributors].
    #[arg(long, env = "POLO_TILE_ATTRIBUTION", value_name = "TEXT")]
    pub tile_attribution: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is prompted for, or read from stdin.
    Add {
        /// Login name.
        name: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Give a user a role, or take it away: `health-authority` (marks exposure cases and decides on
    /// proposals; only this role sees other people's encounters) or `none`.
    Role {
        /// Login name.
        name: String,
        /// `health-authority` or `none`.
        role: String,
    },
    /// List users.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a user's account and everything it holds (points, devices,
    /// tokens, sessions, share links, places, timeline, import jobs). Asks
    /// to type the name unless --yes; cannot be undone.
    Delete {
        /// Login name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Print what was deleted as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The user who owns the imported points.
    #[arg(long)]
    pub user: String,
    /// Store every point under this device [default: the device the file names, else "default"].
    #[arg(long)]
    pub device: Option<String>,
    /// Print only a JSON summary on stdout (no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Store points you deleted before too; by default a re-import leaves them out (counted as
    /// `deleted_left_out`).
    #[arg(long)]
    pub restore_deleted: bool,
    /// Files to import: any supported format, a zip of them, or gzip; a folder
    /// imports every file under it (files that are not location data are skipped).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Whose points to delete.
    #[arg(long)]
    pub user: String,
    /// Only this device's points (with nothing else: all of them).
    #[arg(long)]
    pub device: Option<String>,
    /// Start (inclusive): a date or any timestamp polo can read.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// End: a date includes that whole day; a timestamp is exclusive.
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Only points inside west,south,east,north (degrees; west > east crosses ±180°).
    #[arg(long, value_name = "W,S,E,N", allow_hyphen_values = true)]
    pub bbox: Option<String>,
    /// Every point of every device of the user (needs no other selector).
    #[arg(long)]
    pub all: bool,
    /// Print only a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Whose points to export.
    #[arg(long)]
    pub user: String,
    /// Only this device.
    #[arg(long)]
    pub device: Option<String>,
    /// Start (inclusive): a date or any timestamp polo can read.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// End: a date includes that whole day; a timestamp is exclusive.
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Output format: gpx, geojson or csv.
    #[arg(long)]
    pub format: String,
    /// Output file [default: standard output].
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}
