//! A test hook, inert in normal use: it lets airlock's own integration tests stop a
//! process at a named point, reproducibly, to kill it there with SIGKILL and check what a
//! crash at that instant leaves behind.
//!
//! With `AIRLOCK_TEST_PAUSE=<point>:<n>` in the environment, the n-th time the process
//! reaches [`pause`]`("<point>")` it writes `airlock test pause: <point> <n>` on stderr and
//! then sleeps for good, holding whatever it holds at that instant (locks, temporary
//! files). Without the variable (the only way airlock is ever run outside its tests),
//! `pause` reads one cached value and returns.
//!
//! The points are named where they are placed (`grep -rn 'hook::pause'`); the tests in
//! `tests/it/interrupt.rs` list the ones they use.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms the hook.
pub const ENV: &str = "AIRLOCK_TEST_PAUSE";

fn armed() -> Option<&'static (String, u64)> {
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var(ENV).ok()?;
            let (point, n) = v.rsplit_once(':').unwrap_or((v.as_str(), "1"));
            Some((point.to_string(), n.parse().ok()?))
        })
        .as_ref()
}

/// Stop here for good if the test hook names this point and this is its n-th visit.
pub fn pause(point: &str) {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let Some((armed_point, n)) = armed() else { return };
    if armed_point != point {
        return;
    }
    let visit = SEEN.fetch_add(1, Ordering::SeqCst) + 1;
    if visit != *n {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "airlock test pause: {point} {visit}");
    let _ = err.flush();
    drop(err);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
