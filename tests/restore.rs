use std::fs;

use nix::sys::signal::Signal;

use crate::harness::Sandbox;

fn env_script(sandbox: &Sandbox) {
    let log = sandbox.path("boots.log");
    sandbox.script(
        "10-env.sh",
        &format!(
            "[ \"$1\" = start ] && echo \"boot=$DIND_INIT_BOOT restored=$DIND_INIT_RESTORED\" >> {}\ntrue",
            log.display()
        ),
    );
}

#[test]
fn a_boot_after_a_quiesce_is_a_restore_and_later_boots_are_not() {
    let sandbox = Sandbox::new("restore");
    env_script(&sandbox);

    let mut first = sandbox.start(&[]);
    first.wait_for_line("running: 1 script(s) started");
    sandbox.quiesce_ok();
    // What `docker commit` then `docker rm -f` leaves: the disk, no process.
    first.signal(Signal::SIGKILL);
    first.wait_exit();

    let mut second = sandbox.start(&[]);
    second.wait_for_line("boot 2, restored from quiesce #1");
    second.wait_for_line("running: 1 script(s) started");
    let status = sandbox.status();
    assert_eq!(status["boot"]["boot"], 2);
    assert_eq!(status["boot"]["restored"], true);
    assert_eq!(status["boot"]["restored_from_quiesce"], 1);
    assert_eq!(status["boots"][1]["restored_from_quiesce"], 1);
    assert_eq!(status["quiesces"][0]["boot"], 1);
    second.signal(Signal::SIGTERM);
    assert_eq!(second.wait_exit(), 0);

    let mut third = sandbox.start(&[]);
    third.wait_for_line("running: 1 script(s) started");
    assert_eq!(sandbox.status()["boot"]["restored"], false);
    third.signal(Signal::SIGTERM);
    third.wait_exit();

    let boots = fs::read_to_string(sandbox.path("boots.log")).unwrap();
    assert_eq!(
        boots.lines().collect::<Vec<_>>(),
        [
            "boot=1 restored=0",
            "boot=2 restored=1",
            "boot=3 restored=0"
        ]
    );
}

#[test]
fn a_corrupt_state_file_is_kept_aside_and_the_boot_goes_on() {
    let sandbox = Sandbox::new("corrupt-state");
    env_script(&sandbox);
    fs::create_dir_all(sandbox.state.parent().unwrap()).unwrap();
    fs::write(&sandbox.state, "{ this is not json").unwrap();
    let init = sandbox.start(&[]);
    init.wait_for_line("is not valid JSON");
    init.wait_for_line("running: 1 script(s) started");
    let kept: Vec<_> = fs::read_dir(sandbox.state.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        fs::read_to_string(kept[0].path()).unwrap(),
        "{ this is not json"
    );
    assert_eq!(sandbox.status()["boot"]["boot"], 1);
}

#[test]
fn an_unwritable_state_file_is_a_warning_not_a_dead_container() {
    let sandbox = Sandbox::new("unwritable-state");
    env_script(&sandbox);
    // A directory where the state file should be: every write fails.
    fs::create_dir_all(&sandbox.state).unwrap();
    let init = sandbox.start(&[]);
    init.wait_for_line("cannot write state file");
    init.wait_for_line("running: 1 script(s) started");
    sandbox.quiesce_ok();
}
