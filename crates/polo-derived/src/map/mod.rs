//! Map levels of detail: being built on the `map` branch.

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::Store;

use crate::DerivedResult;

/// Rebuilds the map rows of `device` for the days `[first, last]` touch.
///
/// # Errors
/// Store failures.
pub fn refresh_device(
    _store: &dyn Store,
    _user: UserId,
    _device: DeviceId,
    _first: Timestamp,
    _last: Timestamp,
) -> DerivedResult<()> {
    Ok(())
}
