//! Property-based replication test: two instances take arbitrary
//! interleavings of writes (inserts that collide on identities with other
//! content, range deletes on one device or all, deleting the whole account
//! on either side while the other still writes to it) and of pulls in
//! either direction, with pages of arbitrary size. (Making an account of the
//! same name again is covered sequentially by the replication conformance
//! tests: a peer still writing to the old account after the name was taken
//! again is not told apart from the new account; docs/replication.md.) After a final exchange both
//! hold the same points, and another exchange changes nothing on either
//! side (no ping-pong).
//!
//! Every case takes two fresh stores. It runs [`DEFAULT_CASES`] cases, or
//! as many as the backend's test file asks for (a backend whose stores are
//! slow to create runs fewer), or `PROPTEST_CASES` when set; a failure
//! prints the shrunk interleaving.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use polo_domain::{Coord, Fix, SourceFormat, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::Fixture;
use super::replication::pull;
use crate::{PointQuery, Store};

/// Cases unless the backend or `PROPTEST_CASES` says otherwise.
pub const DEFAULT_CASES: u32 = 48;

#[derive(Debug, Clone)]
enum Op {
    /// Insert on side 0 or 1: device (0/1), first second, count, content tag.
    Insert { side: usize, device: usize, start: i64, count: i64, tag: u8 },
    /// Range delete on a side: one device or all, `[from, from + len)` seconds.
    Delete { side: usize, device: Option<usize>, from: i64, len: i64 },
    /// Pull from `from_side` into the other, in pages of `page` points.
    Pull { from_side: usize, page: usize },
    /// Delete alice's account on a side (nothing when it has none).
    DeleteAccount { side: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, 0..2usize, 0..200i64, 1..30i64, any::<u8>())
            .prop_map(|(side, device, start, count, tag)| Op::Insert { side, device, start, count, tag }),
        1 => (0..2usize, proptest::option::of(0..2usize), 0..200i64, 1..60i64)
            .prop_map(|(side, device, from, len)| Op::Delete { side, device, from, len }),
        2 => (0..2usize, 1..80usize).prop_map(|(from_side, page)| Op::Pull { from_side, page }),
        1 => (0..2usize).prop_map(|side| Op::DeleteAccount { side }),
    ]
}

const T0: i64 = 1_700_000_000_000;
const DEVICES: [&str; 2] = ["phone", "watch"];

/// Alice's account (its password) and points, by device name and time.
fn points(store: &dyn Store) -> (Option<String>, BTreeMap<(String, i64), Fix>) {
    let mut out = BTreeMap::new();
    let Some(user) = store.user_by_name("alice").unwrap() else { return (None, out) };
    let names: BTreeMap<_, _> = store.list_devices(user.id).unwrap().into_iter().map(|d| (d.id, d.name)).collect();
    store
        .scan_points(&PointQuery::user(user.id), &mut |p| {
            out.insert((names[&p.device].clone(), p.fix.time.0), p.fix);
            ControlFlow::Continue(())
        })
        .unwrap();
    (Some(user.password_hash), out)
}

fn run_case(sides: [&dyn Store; 2], ops: Vec<Op>) -> Result<(), TestCaseError> {
    // Alice and her devices exist on A; B learns them by replication.
    let alice = sides[0].create_user("alice", "$argon2id$x", false).unwrap();
    for name in DEVICES {
        sides[0].ensure_device(alice.id, name).unwrap();
    }
    pull(sides[0], sides[1], 1_000);
    for op in ops {
        match op {
            Op::Insert { side, device, start, count, tag } => {
                let store = sides[side];
                // A deleted account takes no more writes here (a phone whose
                // account is gone); writes on the other side until it hears of
                // the deletion are what this test races against it.
                let Some(user) = store.user_by_name("alice").unwrap() else { continue };
                let user = user.id;
                let device = store.ensure_device(user, DEVICES[device]).unwrap().id;
                let fixes: Vec<Fix> = (start..start + count)
                    .map(|s| {
                        let coord = Coord { lat_e7: i32::from(tag), lon_e7: s as i32 };
                        let mut f = Fix::new(Timestamp(T0 + s * 1000), coord, SourceFormat::Api);
                        f.battery_percent = Some(tag % 101);
                        f
                    })
                    .collect();
                store.insert_points(user, device, &fixes).unwrap();
            }
            Op::Delete { side, device, from, len } => {
                let store = sides[side];
                let Some(user) = store.user_by_name("alice").unwrap() else { continue };
                let user = user.id;
                let device = device.map(|d| store.ensure_device(user, DEVICES[d]).unwrap().id);
                let query = PointQuery {
                    user,
                    device,
                    from: Some(Timestamp(T0 + from * 1000)),
                    to: Some(Timestamp(T0 + (from + len) * 1000)),
                };
                store.delete_points(&query).unwrap();
            }
            Op::Pull { from_side, page } => {
                pull(sides[from_side], sides[1 - from_side], page);
            }
            Op::DeleteAccount { side } => {
                if let Some(user) = sides[side].user_by_name("alice").unwrap() {
                    sides[side].delete_user(user.id).unwrap();
                }
            }
        }
        // Different clocks per write, so versions are distinct like in real life.
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
    pull(sides[0], sides[1], 50);
    pull(sides[1], sides[0], 50);
    pull(sides[0], sides[1], 50);
    prop_assert_eq!(points(sides[0]), points(sides[1]));
    let heads = (sides[0].last_seq().unwrap(), sides[1].last_seq().unwrap());
    prop_assert_eq!(pull(sides[0], sides[1], 50), 0);
    prop_assert_eq!(pull(sides[1], sides[0], 50), 0);
    prop_assert_eq!((sides[0].last_seq().unwrap(), sides[1].last_seq().unwrap()), heads);
    Ok(())
}

/// Any interleaving of writes and pulls converges, and then goes quiet.
/// `make` returns two fresh, empty stores per case, or `None` to skip;
/// `cases` cases run unless `PROPTEST_CASES` is set.
///
/// # Panics
/// With the shrunk failing interleaving when a case fails.
pub fn any_interleaving_of_writes_and_pulls_converges_and_goes_quiet<F: Fixture>(
    make: &dyn Fn() -> Option<(F, F)>,
    cases: u32,
) {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let skipped = std::cell::Cell::new(false);
    let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
        let Some((a, b)) = make() else {
            skipped.set(true);
            return Ok(());
        };
        run_case([a.store(), b.store()], ops)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    if skipped.get() {
        eprintln!("SKIPPED: any_interleaving_of_writes_and_pulls_converges_and_goes_quiet had no stores");
    }
}
