//! Unit tests of the subscription: reconnect backoff and operation names.

use super::task::operation_name;
use super::*;

#[test]
fn backoff_grows_exponentially_with_jitter_and_is_capped() {
    let policy = ReconnectPolicy {
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
        multiplier: 2.0,
        ..ReconnectPolicy::default()
    };
    for _ in 0..200 {
        let d1 = policy.delay(1);
        assert!(
            d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
            "{d1:?}"
        );
        let d4 = policy.delay(4);
        assert!(
            d4 >= Duration::from_millis(400) && d4 <= Duration::from_millis(800),
            "{d4:?}"
        );
        let d30 = policy.delay(30);
        assert!(
            d30 >= Duration::from_secs(1) && d30 <= Duration::from_secs(2),
            "{d30:?}"
        );
        assert!(policy.delay(u32::MAX) <= Duration::from_secs(2));
    }
    // Jitter: not every delay is the same.
    let delays: std::collections::HashSet<_> = (0..50).map(|_| policy.delay(3)).collect();
    assert!(delays.len() > 1);
}

#[test]
fn the_operation_name_is_the_type_name() {
    assert_eq!(operation_name::<crate::Viewport>(), "Viewport");
}
