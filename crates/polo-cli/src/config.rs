//! The one typed configuration, resolved in this order: built-in defaults,
//! then the config file, then environment variables, then flags.
//!
//! clap already merges flags over environment variables (each flag declares
//! its `env`), so resolution here is: `flag_or_env.or(file).or(default)`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use polo_server::auth::oidc::{OidcConfig, OidcSettings};
use polo_server::site::SiteDefaults;
use polo_server::street_names::StreetNameSettings;
use polo_store::Store;
use serde::Deserialize;

use crate::cli::GlobalArgs;
use crate::database::Database;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The settings file, `polo.toml`. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// The store: `sqlite://PATH` or `postgres://…` (default: the data directory's `polo.sqlite`).
    pub database_url: Option<String>,
    /// Listen address for `polo serve`.
    pub listen: Option<String>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// A tracing filter, e.g. `info,polo=debug`.
    pub log_level: Option<String>,
    /// `polo serve`: Host names answered (empty or absent: any).
    pub allowed_hosts: Option<Vec<String>>,
    /// `polo serve`: networks (CIDR) allowed on admin and metrics routes.
    pub admin_networks: Option<Vec<String>>,
    /// `polo serve`: reverse proxies (CIDR) whose `X-Forwarded-For`/`-Proto` are believed.
    pub trusted_proxies: Option<Vec<String>>,
    /// `polo serve`: `off`, `stdout` or a file path.
    pub access_log: Option<String>,
    /// `polo serve`: TLS certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// `polo serve`: TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// `polo serve`: OwnTracks over MQTT broker URL (`mqtt://HOST:PORT`).
    pub mqtt_url: Option<String>,
    /// `polo serve`: MQTT broker user name.
    pub mqtt_username: Option<String>,
    /// `polo serve`: MQTT broker password.
    pub mqtt_password: Option<String>,
    /// `polo serve`: MQTT topic filter (default `owntracks/#`).
    pub mqtt_topic: Option<String>,
    /// `polo serve`: republish positions and zone events to the MQTT broker (default false).
    pub mqtt_republish: Option<bool>,
    /// `polo serve`: Home Assistant MQTT discovery of every device (default false).
    pub mqtt_discovery: Option<bool>,
    /// `polo serve`: failed authentications before the back-off starts (default 5).
    pub auth_free_failures: Option<u32>,
    /// `polo serve`: online street names for places, `photon` or `nominatim` (with `geocoder_url`).
    pub geocoder: Option<String>,
    /// `polo serve`: the geocoder's base URL (with `geocoder`).
    pub geocoder_url: Option<String>,
    /// `polo serve`: other instances to pull changes from, continuously.
    pub replication: Option<Vec<FileReplication>>,
    /// `polo backup`: destination (directory or `s3://`, `gs://`, `az://` URL).
    pub backup_to: Option<String>,
    /// `polo backup`/`restore`: endpoint of an S3-compatible or Azure service.
    pub backup_endpoint: Option<String>,
    /// `polo backup`: keep the last backup of this many recent days.
    pub backup_retain_daily: Option<u32>,
    /// `polo backup`: keep the last backup of this many recent months.
    pub backup_retain_monthly: Option<u32>,
    /// `polo serve`: the web app (`[web]`).
    pub web: Option<WebFile>,
    /// `polo serve`: sign-in with an OpenID Connect provider (`[oidc]`, keys in `docs/accounts.md`).
    pub oidc: Option<OidcConfig>,
}

/// The `[web]` table of `polo.toml`: what the web app shows. An
/// administrator may override these at runtime (`PUT /api/v1/admin/settings`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebFile {
    /// The instance's name.
    pub instance_name: Option<String>,
    /// The map's raster tile URL template, with `{z}`, `{x}`, `{y}`.
    pub tile_url: Option<String>,
    /// The tiles' attribution.
    pub tile_attribution: Option<String>,
}

/// One `[[replication]]` of the settings file: `polo serve` pulls `source`
/// into its own store, continuously, in the background.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReplication {
    /// A name for logs, `/metrics` and the API (default: the source URL).
    pub name: Option<String>,
    /// The source's base URL.
    pub source: String,
    /// The source's replication token.
    pub token: String,
    /// Only these users (default: everyone).
    #[serde(default)]
    pub users: Vec<String>,
    /// Points per page (default 50000).
    pub page_points: Option<usize>,
}

/// The backup settings from the file; flags and env win over them.
#[derive(Debug, Clone, Default)]
pub struct FileBackup {
    pub to: Option<String>,
    pub endpoint: Option<String>,
    pub retain_daily: Option<u32>,
    pub retain_monthly: Option<u32>,
}

/// The front-door settings from the file; flags and env win over them.
#[derive(Debug, Clone, Default)]
pub struct FileServe {
    pub allowed_hosts: Option<Vec<String>>,
    pub admin_networks: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<String>>,
    pub access_log: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub mqtt_url: Option<String>,
    pub mqtt_username: Option<String>,
    pub mqtt_password: Option<String>,
    pub mqtt_topic: Option<String>,
    pub mqtt_republish: Option<bool>,
    pub mqtt_discovery: Option<bool>,
    pub auth_free_failures: Option<u32>,
    pub geocoder: Option<String>,
    pub geocoder_url: Option<String>,
    pub replications: Vec<FileReplication>,
    pub web: WebFile,
    pub oidc: Option<OidcConfig>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the database and reject files live.
    pub data_dir: PathBuf,
    /// The store the commands open.
    pub database: Database,
    /// Listen address from the file, when set there (flags and env win).
    pub file_listen: Option<String>,
    /// Log line format.
    pub log_format: LogFormat,
    /// Default tracing filter (the `POLO_LOG` env var overrides it).
    pub log_level: String,
    /// Front-door settings from the file (flags and env win).
    pub file_serve: FileServe,
    /// Backup settings from the file (flags and env win).
    pub file_backup: FileBackup,
}

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl Config {
    /// Resolves the configuration from the global flags (already merged with env).
    pub fn resolve(args: &GlobalArgs) -> anyhow::Result<Self> {
        let default_dir = default_data_dir()?;
        let data_dir_hint = args.data_dir.clone().unwrap_or_else(|| default_dir.clone());
        let file = match &args.config {
            Some(path) => Some(load_file(path)?),
            None => {
                let implicit = data_dir_hint.join("polo.toml");
                if implicit.exists() { Some(load_file(&implicit)?) } else { None }
            }
        }
        .unwrap_or_default();
        let data_dir = args.data_dir.clone().or(file.data_dir).unwrap_or(default_dir);
        let database = match args.database_url.as_deref().or(file.database_url.as_deref()) {
            Some(url) => Database::parse(url)?,
            None => Database::default_in(&data_dir),
        };
        let log_format = match args.log_format.as_deref().or(file.log_format.as_deref()).unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => bail!("log format must be 'text' or 'json', not {other:?}"),
        };
        Ok(Self {
            data_dir,
            database,
            file_listen: file.listen,
            log_format,
            log_level: file.log_level.unwrap_or_else(|| "info".to_owned()),
            file_serve: FileServe {
                allowed_hosts: file.allowed_hosts,
                admin_networks: file.admin_networks,
                trusted_proxies: file.trusted_proxies,
                access_log: file.access_log,
                tls_cert: file.tls_cert,
                tls_key: file.tls_key,
                mqtt_url: file.mqtt_url,
                mqtt_username: file.mqtt_username,
                mqtt_password: file.mqtt_password,
                mqtt_topic: file.mqtt_topic,
                mqtt_republish: file.mqtt_republish,
                mqtt_discovery: file.mqtt_discovery,
                auth_free_failures: file.auth_free_failures,
                geocoder: file.geocoder,
                geocoder_url: file.geocoder_url,
                replications: file.replication.unwrap_or_default(),
                web: file.web.unwrap_or_default(),
                oidc: file.oidc,
            },
            file_backup: FileBackup {
                to: file.backup_to,
                endpoint: file.backup_endpoint,
                retain_daily: file.backup_retain_daily,
                retain_monthly: file.backup_retain_monthly,
            },
        })
    }

    /// The listen address: the flag or env value when given, else the file's, else the default.
    pub fn listen_addr(&self, flag_or_env: Option<&str>) -> anyhow::Result<SocketAddr> {
        let text = flag_or_env.or(self.file_listen.as_deref()).unwrap_or(DEFAULT_LISTEN);
        text.parse().with_context(|| format!("invalid listen address {text:?} (expected IP:PORT)"))
    }

    /// The online geocoder for street names, when one is configured: the
    /// flag or env value of each of `--geocoder` and `--geocoder-url` over the
    /// file's `geocoder` and `geocoder_url`. Both or neither; neither (the
    /// default) means no network requests.
    pub fn street_names(
        &self,
        geocoder_flag_or_env: Option<&str>,
        url_flag_or_env: Option<&str>,
    ) -> anyhow::Result<Option<StreetNameSettings>> {
        let file = &self.file_serve;
        let provider = geocoder_flag_or_env.or(file.geocoder.as_deref());
        let url = url_flag_or_env.or(file.geocoder_url.as_deref());
        match (provider, url) {
            (None, None) => Ok(None),
            (Some(provider), Some(url)) => Ok(Some(StreetNameSettings::new(provider, url)?)),
            (Some(provider), None) => bail!(
                "--geocoder {provider} needs the server's URL: add --geocoder-url URL \
                 (env POLO_GEOCODER_URL, config geocoder_url)"
            ),
            (None, Some(url)) => bail!(
                "--geocoder-url {url} needs the provider it speaks: add --geocoder photon|nominatim \
                 (env POLO_GEOCODER, config geocoder)"
            ),
        }
    }

    /// The web app's site settings: each flag or env value over the file's
    /// `[web]` value over the default.
    pub fn site(
        &self,
        instance_name: Option<&str>,
        tile_url: Option<&str>,
        tile_attribution: Option<&str>,
    ) -> anyhow::Result<SiteDefaults> {
        let web = &self.file_serve.web;
        Ok(SiteDefaults::new(
            instance_name.or(web.instance_name.as_deref()),
            tile_url.or(web.tile_url.as_deref()),
            tile_attribution.or(web.tile_attribution.as_deref()),
        )?)
    }

    /// The validated `[oidc]` settings, when the table is present.
    pub fn oidc(&self) -> anyhow::Result<Option<OidcSettings>> {
        let Some(table) = self.file_serve.oidc.clone() else { return Ok(None) };
        Ok(Some(OidcSettings::from_config(table)?))
    }

    /// Where reject files go.
    pub fn rejects_dir(&self) -> PathBuf {
        self.data_dir.join("rejects")
    }

    /// Opens (and migrates) the configured store ([`Database::open`]).
    pub fn open_store(&self) -> anyhow::Result<Arc<dyn Store>> {
        self.database.open()
    }
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    directories::ProjectDirs::from("", "", "polo")
        .map(|dirs| dirs.data_dir().to_path_buf())
        .context("cannot find a home directory for the default data directory; pass --data-dir")
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use polo_server::street_names::Provider;

    use super::*;

    fn args(data_dir: Option<&Path>, config: Option<&Path>) -> GlobalArgs {
        GlobalArgs {
            data_dir: data_dir.map(Path::to_path_buf),
            database_url: None,
            config: config.map(Path::to_path_buf),
            log_format: None,
        }
    }

    #[test]
    fn file_overrides_defaults_and_flags_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("polo.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9999\"\nlog_format = \"json\"\ndata_dir = \"/from/file\"\n")
            .unwrap();
        let from_file = Config::resolve(&args(None, Some(&file))).unwrap();
        assert_eq!(from_file.data_dir, PathBuf::from("/from/file"));
        assert_eq!(from_file.log_format, LogFormat::Json);
        assert_eq!(from_file.listen_addr(None).unwrap().port(), 9999);
        assert_eq!(from_file.listen_addr(Some("127.0.0.1:0")).unwrap().port(), 0);
        let flagged = Config::resolve(&args(Some(Path::new("/from/flag")), Some(&file))).unwrap();
        assert_eq!(flagged.data_dir, PathBuf::from("/from/flag"));
    }

    #[test]
    fn the_data_dirs_polo_toml_is_read_implicitly() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("polo.toml"), "log_level = \"debug\"\n").unwrap();
        let config = Config::resolve(&args(Some(dir.path()), None)).unwrap();
        assert_eq!(config.log_level, "debug");
        assert_eq!(config.listen_addr(None).unwrap().to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn mqtt_settings_are_read_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("polo.toml");
        std::fs::write(
            &file,
            "mqtt_url = \"mqtt://broker:1884\"\nmqtt_username = \"polo\"\nmqtt_password = \"pw\"\nmqtt_topic = \"owntracks/+/+\"\nmqtt_republish = true\n",
        )
        .unwrap();
        let serve = Config::resolve(&args(None, Some(&file))).unwrap().file_serve;
        assert_eq!(serve.mqtt_url.as_deref(), Some("mqtt://broker:1884"));
        assert_eq!(serve.mqtt_username.as_deref(), Some("polo"));
        assert_eq!(serve.mqtt_password.as_deref(), Some("pw"));
        assert_eq!(serve.mqtt_topic.as_deref(), Some("owntracks/+/+"));
        assert_eq!((serve.mqtt_republish, serve.mqtt_discovery), (Some(true), None));
    }

    #[test]
    fn the_geocoder_is_off_by_default_and_takes_provider_and_url_together() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("polo.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9999\"\n").unwrap();
        let plain = Config::resolve(&args(None, Some(&file))).unwrap();
        assert_eq!(plain.street_names(None, None).unwrap(), None, "no network by default");

        std::fs::write(&file, "geocoder = \"photon\"\ngeocoder_url = \"https://photon.komoot.io\"\n").unwrap();
        let config = Config::resolve(&args(None, Some(&file))).unwrap();
        assert_eq!(config.file_serve.geocoder.as_deref(), Some("photon"));
        let from_file = config.street_names(None, None).unwrap().unwrap();
        assert_eq!((from_file.provider, from_file.url.as_str()), (Provider::Photon, "https://photon.komoot.io"));
        // Flags (merged with env by clap) win, key by key.
        let flagged = config.street_names(Some("nominatim"), Some("http://127.0.0.1:8088")).unwrap().unwrap();
        assert_eq!((flagged.provider, flagged.url.as_str()), (Provider::Nominatim, "http://127.0.0.1:8088"));
        let url_only = config.street_names(None, Some("http://photon.lan:2322")).unwrap().unwrap();
        assert_eq!((url_only.provider, url_only.url.as_str()), (Provider::Photon, "http://photon.lan:2322"));

        // One without the other is an error that says what is missing.
        let e = plain.street_names(Some("photon"), None).unwrap_err();
        assert!(format!("{e:#}").contains("add --geocoder-url URL"), "{e:#}");
        let e = plain.street_names(None, Some("https://photon.komoot.io")).unwrap_err();
        assert!(format!("{e:#}").contains("add --geocoder photon|nominatim"), "{e:#}");
        std::fs::write(&file, "geocoder_url = \"https://photon.komoot.io\"\n").unwrap();
        let half = Config::resolve(&args(None, Some(&file))).unwrap();
        assert!(half.street_names(None, None).is_err(), "half a configuration in the file");
        // Unknown providers and unusable URLs are refused.
        let e = plain.street_names(Some("google"), Some("https://maps.example")).unwrap_err();
        assert!(format!("{e:#}").contains("use photon or nominatim"), "{e:#}");
        let e = plain.street_names(Some("photon"), Some("ftp://photon.lan")).unwrap_err();
        assert!(format!("{e:#}").contains("the scheme must be http or https"), "{e:#}");
    }

    #[test]
    fn backup_settings_are_read_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("polo.toml");
        std::fs::write(
            &file,
            "backup_to = \"s3://bucket/polo\"\nbackup_endpoint = \"https://s3.example\"\n\
             backup_retain_daily = 7\nbackup_retain_monthly = 12\n",
        )
        .unwrap();
        let backup = Config::resolve(&args(None, Some(&file))).unwrap().file_backup;
        assert_eq!(backup.to.as_deref(), Some("s3://bucket/polo"));
        assert_eq!(backup.endpoint.as_deref(), Some("https://s3.example"));
        assert_eq!((backup.retain_daily, backup.retain_monthly), (Some(7), Some(12)));
    }

    #[test]
    fn web_settings_come_from_flags_then_the_file_then_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("polo.toml");
        std::fs::write(
            &file,
            "[web]\ninstance_name = \"Family\"\ntile_url = \"https://tiles.example/{z}/{x}/{y}.png\"\n",
        )
        .unwrap();
        let config = Config::resolve(&args(None, Some(&file))).unwrap();
        let site = config.site(None, None, None).unwrap();
        assert_eq!(site.instance_name, "Family");
        assert_eq!(site.tile_url, "https://tiles.example/{z}/{x}/{y}.png");
        assert_eq!(site.tile_attribution, polo_server::site::DEFAULT_TILE_ATTRIBUTION);
        let flagged = config.site(Some("Flagged"), None, Some("© someone")).unwrap();
        assert_eq!((flagged.instance_name.as_str(), flagged.tile_attribution.as_str()), ("Flagged", "© someone"));
        let e = config.site(None, Some("https://tiles.example/{z}.png"), None).unwrap_err();
        assert!(format!("{e:#}").contains("tile_url: must contain {x}"), "{e:#}");
        let plain = Config::resolve(&args(Some(dir.path()), Some(&dir.path().join("none.toml"))));
        assert!(plain.is_err(), "a named config file must exist");
        std::fs::write(&file, "[web]\ntile_ur = \"x\"\n").unwrap();
        let e = Config::resolve(&args(None, Some(&file))).unwrap_err();
        assert!(format!("{e:#}").contains("tile_ur"), "{e:#}");
    }

    #[test]
    fn the_oidc_table_is_read_and_checked_with_the_key_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("polo.toml");
        let none = Config::resolve(&args(None, Some(&file.with_extension("absent")))).ok();
        assert!(none.is_none(), "a named config file must exist");
        std::fs::write(&file, "listen = \"127.0.0.1:9999\"\n").unwrap();
        assert_eq!(Config::resolve(&args(None, Some(&file))).unwrap().oidc().unwrap(), None, "off by default");
        std::fs::write(
            &file,
            "[oidc]\nissuer = \"https://id.example/realms/polo\"\nclient_id = \"polo\"\nclient_secret = \"s\"\n\
             redirect_uri = \"https://polo.example/api/v1/auth/oidc/callback\"\ncreate_accounts = true\n\
             allowed_domains = [\"example.org\"]\npassword_login = false\n",
        )
        .unwrap();
        let settings = Config::resolve(&args(None, Some(&file))).unwrap().oidc().unwrap().unwrap();
        assert!(settings.create_accounts && !settings.password_login);
        assert_eq!(settings.allowed_domains, ["example.org"]);
        std::fs::write(&file, "[oidc]\nissuer = \"https://id.example\"\nclient_id = \"polo\"\n").unwrap();
        let e = Config::resolve(&args(None, Some(&file))).unwrap().oidc().unwrap_err();
        assert!(format!("{e:#}").contains("oidc.client_secret: is required"), "{e:#}");
        std::fs::write(&file, "[oidc]\nisuer = \"https://id.example\"\n").unwrap();
        let e = Config::resolve(&args(None, Some(&file))).unwrap_err();
        assert!(format!("{e:#}").contains("isuer"), "{e:#}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let e = Config::resolve(&args(None, Some(&file))).unwrap_err();
        assert!(format!("{e:#}").contains("lisen"), "{e:#}");
        std::fs::write(&file, "log_format = \"xml\"\n").unwrap();
        assert!(Config::resolve(&args(None, Some(&file))).is_err());
    }
}
