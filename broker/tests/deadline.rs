//! The test deadline has teeth: a test whose executor sleeps past its deadline is
//! ended with stacks and exit status 124, not left to hold CI.

use std::process::Command;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};
use weir_broker::deadline;

const CHILD_ENV: &str = "WEIR_DEADLINE_CHILD";

#[test]
fn given_an_executor_asleep_past_its_deadline_when_it_expires_should_print_stacks_and_exit_124() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hung_child",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("the test binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(deadline::EXPIRED_EXIT_CODE),
        "stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("DEADLINE EXPIRED: hung_child ran past 1 s"),
        "stderr:\n{stderr}"
    );
    // gdb's stacks (or the /proc fallback) name the sleeping executor thread.
    assert!(
        stderr.contains("hung_child") && (stderr.contains("Thread") || stderr.contains("wchan=")),
        "no stacks in:\n{stderr}"
    );
}

/// Run only as the child of the test above.
#[test]
#[ignore = "the child process of the deadline test"]
fn hung_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let _deadline = deadline::arm(deadline::this_test(), Duration::from_secs(1));
    LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("executor")
        .run(async { glommio::timer::sleep(Duration::from_secs(3600)).await });
    unreachable!("the deadline ends the process first");
}
