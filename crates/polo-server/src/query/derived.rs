//! What the derived-data routes (timeline, places, stats) share: running
//! lookups on the blocking pool, parameter parsing with errors that name
//! the parameter, and mapping `polo-derived` errors to API errors.

use polo_derived::DerivedError;
use polo_domain::time::parse_timestamp;
use polo_domain::{DeviceId, Timestamp};
use polo_store::Device;
use polo_timeline::LocalDate;

use crate::error::ApiError;

impl From<DerivedError> for ApiError {
    fn from(e: DerivedError) -> Self {
        match e {
            DerivedError::Store(e) => e.into(),
            DerivedError::Invalid(why) => ApiError::bad_request(why),
            other => {
                tracing::error!(error = %other, "derived data failure");
                ApiError::internal("the stored timeline could not be read; see the server log")
            }
        }
    }
}

/// Runs a store lookup on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("lookup task failed: {e}")))?
}

/// The caller's device called `name`.
pub(crate) fn device_named(devices: &[Device], name: &str) -> Result<DeviceId, ApiError> {
    devices
        .iter()
        .find(|d| d.name == name)
        .map(|d| d.id)
        .ok_or_else(|| ApiError::bad_request(format!("you have no device named {name:?}")))
}

/// The caller's devices a range query covers, with their names: the one
/// named `wanted`, or all of them.
pub(crate) fn devices_for(devices: &[Device], wanted: Option<&str>) -> Result<Vec<(DeviceId, String)>, ApiError> {
    match wanted {
        Some(name) => Ok(vec![(device_named(devices, name)?, name.to_owned())]),
        None => Ok(devices.iter().map(|d| (d.id, d.name.clone())).collect()),
    }
}

/// A local day `YYYY-MM-DD` from 1970 to 9999.
pub(crate) fn parse_date(name: &str, text: &str) -> Result<LocalDate, ApiError> {
    let bad = || ApiError::bad_request(format!("{name} must be a day as YYYY-MM-DD from 1970 to 9999, not {text:?}"));
    let mut parts = text.split('-');
    let (Some(y), Some(m), Some(d), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let (year, month, day) = (
        y.parse::<i32>().map_err(|_| bad())?,
        m.parse::<u32>().map_err(|_| bad())?,
        d.parse::<u32>().map_err(|_| bad())?,
    );
    if !(1970..=9999).contains(&year) {
        return Err(bad());
    }
    LocalDate::from_ymd(year, month, day).ok_or_else(bad)
}

/// `YYYY-MM-DD`.
pub(crate) fn render_date(date: LocalDate) -> String {
    let (y, m, d) = date.ymd();
    format!("{y:04}-{m:02}-{d:02}")
}

/// An instant (RFC 3339 or epoch seconds/milliseconds).
pub(crate) fn parse_instant(name: &str, text: &str) -> Result<Timestamp, ApiError> {
    parse_timestamp(text).map(|p| p.time).map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
}
