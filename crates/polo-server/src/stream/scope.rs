//! Scoped subscriptions: which of what a caller may see a stream (or
//! `GET /api/v1/live`) carries.
//!
//! The scope is resolved once, when the stream opens, against what the
//! caller has and may see: a device that is not theirs, a user who does not
//! share their location with them, or a kind that does not exist is a 400
//! naming the value, never a silently empty stream. It narrows only: what
//! the caller may see (their devices, the users who granted them, re-read
//! when a grant changes) is decided elsewhere, and a scope can never widen
//! it. Each of the three lists is independent, and absent means "all":
//!
//! * `devices` — the caller's own devices (ids or names): their positions
//!   and the events about them;
//! * `friends` — users who share their location with the caller (names):
//!   their positions, and `friend.*` events about them;
//! * `kinds` — `position` and the event kinds.
//!
//! An empty list (`friends=`) means none of that sort.

use std::collections::HashSet;

use polo_domain::{DeviceId, UserId};
use polo_store::{Store, User};
use polo_zones::evaluate::EventKind;

use crate::error::ApiError;
use crate::sharing::visible_users;

/// The kind of a position message.
pub const POSITION: &str = "position";

/// What a subscription carries, resolved against the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The caller's devices shown; `None`: all of them.
    devices: Option<HashSet<DeviceId>>,
    /// The friends shown (ids); `None`: everyone who shares with the caller.
    friends: Option<HashSet<UserId>>,
    /// The same friends by name, as events name them.
    friend_names: Option<HashSet<String>>,
    /// Kinds carried; `None`: all.
    kinds: Option<HashSet<String>>,
}

/// The raw, comma-separated lists of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScopeLists<'a> {
    /// `devices=`.
    pub devices: Option<&'a str>,
    /// `friends=`.
    pub friends: Option<&'a str>,
    /// `kinds=`.
    pub kinds: Option<&'a str>,
}

fn items(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|item| !item.is_empty())
}

impl Scope {
    /// Resolves `lists` for `viewer`: a 400 naming the first value that is
    /// not theirs to ask for. Blocking (reads devices and grants).
    ///
    /// # Errors
    /// 400 `bad_request` for an unknown device, friend or kind; store failures.
    pub fn resolve(store: &dyn Store, viewer: &User, lists: ScopeLists<'_>) -> Result<Self, ApiError> {
        let mut scope = Self::default();
        if let Some(list) = lists.kinds {
            let mut kinds = HashSet::new();
            for kind in items(list) {
                if kind != POSITION && EventKind::from_name(kind).is_none() {
                    let known: Vec<_> =
                        std::iter::once(POSITION).chain(EventKind::ALL.iter().map(|k| k.name())).collect();
                    return Err(ApiError::bad_request(format!("kinds: {kind:?} is not one of {}", known.join(", "))));
                }
                kinds.insert(kind.to_owned());
            }
            scope.kinds = Some(kinds);
        }
        if let Some(list) = lists.devices {
            let mine = store.list_devices(viewer.id)?;
            let mut devices = HashSet::new();
            for item in items(list) {
                let found = mine.iter().find(|d| d.name == item || item.parse::<i64>().is_ok_and(|id| id == d.id.0));
                match found {
                    Some(device) => devices.insert(device.id),
                    None => {
                        return Err(ApiError::bad_request(format!(
                            "devices: {item:?} is not one of your devices (give their ids or names)"
                        )));
                    }
                };
            }
            scope.devices = Some(devices);
        }
        if let Some(list) = lists.friends {
            let visible = visible_users(store, viewer)?;
            let (mut ids, mut names) = (HashSet::new(), HashSet::new());
            for item in items(list) {
                match visible.iter().find(|u| u.id != viewer.id && u.name == item) {
                    Some(friend) => {
                        ids.insert(friend.id);
                        names.insert(friend.name.clone());
                    }
                    None => {
                        return Err(ApiError::bad_request(format!(
                            "friends: {item:?} does not share their location with you"
                        )));
                    }
                }
            }
            scope.friends = Some(ids);
            scope.friend_names = Some(names);
        }
        Ok(scope)
    }

    /// Whether the subscription carries messages of `kind`.
    #[must_use]
    pub fn wants_kind(&self, kind: &str) -> bool {
        self.kinds.as_ref().is_none_or(|kinds| kinds.contains(kind))
    }

    /// Whether a position of `owner`'s `device` is in scope for `viewer`.
    #[must_use]
    pub fn shows_position(&self, viewer: UserId, owner: UserId, device: DeviceId) -> bool {
        self.wants_kind(POSITION)
            && if owner == viewer {
                self.devices.as_ref().is_none_or(|devices| devices.contains(&device))
            } else {
                self.friends.as_ref().is_none_or(|friends| friends.contains(&owner))
            }
    }

    /// Whether an event of the caller's log is in scope: its kind, its
    /// device, and the friend a `friend.*` event names.
    #[must_use]
    pub fn shows_event(&self, kind: &str, device: i64, friend: Option<&str>) -> bool {
        self.wants_kind(kind)
            && self.devices.as_ref().is_none_or(|devices| devices.contains(&DeviceId(device)))
            && match (friend, &self.friend_names) {
                (Some(friend), Some(names)) => names.contains(friend),
                _ => true,
            }
    }
}

#[cfg(test)]
mod tests {
    use polo_store_sqlite::SqliteStore;

    use super::*;

    #[test]
    fn lists_resolve_against_what_the_caller_has_and_bad_values_are_named() {
        let store = SqliteStore::open_in_memory().unwrap();
        let jane = store.create_user("jane", "h", false).unwrap();
        let bob = store.create_user("bob", "h", false).unwrap();
        let carol = store.create_user("carol", "h", false).unwrap();
        let phone = store.ensure_device(jane.id, "phone").unwrap().id;
        let tablet = store.ensure_device(jane.id, "tablet").unwrap().id;
        let bobs = store.ensure_device(bob.id, "pixel").unwrap().id;
        store.grant_location(bob.id, jane.id, None).unwrap();
        let resolve = |devices, friends, kinds| Scope::resolve(&store, &jane, ScopeLists { devices, friends, kinds });

        let all = resolve(None, None, None).unwrap();
        assert!(all.shows_position(jane.id, jane.id, tablet) && all.shows_position(jane.id, bob.id, bobs));
        assert!(
            all.shows_event("zone.enter", tablet.0, None) && all.shows_event("friend.nearby", phone.0, Some("bob"))
        );

        let phone_and_tablet = format!("{}, tablet", phone.0);
        let scoped = resolve(Some(&phone_and_tablet), Some("bob"), Some("position,zone.enter")).unwrap();
        assert!(scoped.shows_position(jane.id, jane.id, phone) && scoped.shows_position(jane.id, jane.id, tablet));
        assert!(scoped.shows_position(jane.id, bob.id, bobs));
        assert!(scoped.shows_event("zone.enter", phone.0, None));
        assert!(!scoped.shows_event("zone.leave", phone.0, None), "another kind");

        let one = resolve(Some("phone"), Some(""), Some("friend.nearby,position")).unwrap();
        assert!(!one.shows_position(jane.id, jane.id, tablet), "another device");
        assert!(!one.shows_position(jane.id, bob.id, bobs), "an empty list of friends: none");
        assert!(!one.shows_event("friend.nearby", tablet.0, Some("bob")));
        assert!(!one.shows_event("friend.nearby", phone.0, Some("bob")), "a friend outside the scope");
        let no_positions = resolve(None, None, Some("zone.enter")).unwrap();
        assert!(!no_positions.wants_kind(POSITION) && !no_positions.shows_position(jane.id, jane.id, phone));

        let message = |r: Result<Scope, ApiError>| r.unwrap_err().message;
        assert!(message(resolve(Some("phone,watch"), None, None)).starts_with("devices: \"watch\""));
        let bobs_id = bobs.0.to_string();
        assert!(message(resolve(Some(&bobs_id), None, None)).contains("not one of your devices"));
        assert!(message(resolve(None, Some("carol"), None)).starts_with("friends: \"carol\" does not share"));
        assert!(message(resolve(None, Some("jane"), None)).starts_with("friends: \"jane\""), "not oneself");
        assert!(
            message(resolve(None, None, Some("zone.entered"))).starts_with("kinds: \"zone.entered\" is not one of")
        );
        let _ = carol;
    }
}
