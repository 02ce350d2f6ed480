//! `aliddns update`, `run` and `ip` as the real binary against the simulator, a
//! loopback echo server and captured /proc files.

mod common;

use alidns_sim::{Fault, Sim};
use common::{Echo, TempDir, aliddns, tempdir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const PROC_ROUTER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc-router");

struct Env {
    sim: Sim,
    echo: Echo,
    dir: TempDir,
    conf: PathBuf,
}

impl Env {
    fn new(records: &str) -> Env {
        Self::with_global("", records)
    }

    fn with_global(global: &str, records: &str) -> Env {
        let sim = Sim::start();
        sim.add_domain("example.com");
        sim.add_domain("example.org");
        let echo = Echo::start("203.0.113.7\n");
        let dir = tempdir("ddns");
        let conf = dir.join("aliddns.conf");
        std::fs::write(
            &conf,
            format!(
                "[DEFAULT]\naccess_id=testid\naccess_key=testsecret\nendpoint={}\nip_urls={}\n\
                 state_file={}\nretry_delay_ms=10\n{global}\n{records}",
                sim.endpoint(),
                echo.url,
                dir.join("state").display()
            ),
        )
        .unwrap();
        Env { sim, echo, dir, conf }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = aliddns();
        c.arg("-c").arg(&self.conf).args(args).env("ALIDDNS_PROC_ROOT", PROC_ROUTER);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run aliddns")
    }

    fn value_of(&self, domain: &str, rr: &str, rtype: &str) -> Vec<String> {
        self.sim.records(domain).into_iter().filter(|r| r.rr == rr && r.rtype == rtype).map(|r| r.value).collect()
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const WWW_A: &str = "[www]\ndomain=example.com\nsub_domain=www\ntype=A\n";

#[test]
fn updates_an_existing_record_and_keeps_its_ttl_and_line() {
    let env = Env::new(WWW_A);
    let id = env.sim.add_record("example.com", "www", "A", "198.51.100.1", 1200, "default");
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 updated");
    let r = env.sim.records("example.com").into_iter().find(|r| r.id == id).unwrap();
    assert_eq!((r.value.as_str(), r.ttl, r.line.as_str()), ("203.0.113.7", 1200, "default"));
    assert_eq!(env.sim.count("DescribeSubDomainRecords"), 1);
    assert_eq!(env.sim.count("UpdateDomainRecord"), 1);
}

#[test]
fn unchanged_address_makes_zero_api_calls() {
    let env = Env::new(WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    assert!(env.run(&["update"]).status.success());
    env.sim.reset_calls();
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 unchanged");
    assert_eq!(env.sim.count("*"), 0, "the state file must spare every API call");
    // A new address (PPPoE redial) is noticed on the next pass.
    env.echo.set("203.0.113.99\n");
    let o = env.run(&["update"]);
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.99 updated");
    assert_eq!(env.value_of("example.com", "www", "A"), vec!["203.0.113.99"]);
    // --force asks AliDNS even when the cache says current, and finds it current.
    env.sim.reset_calls();
    let o = env.run(&["update", "--force"]);
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.99 unchanged");
    assert_eq!(env.sim.count("DescribeSubDomainRecords"), 1);
    assert_eq!(env.sim.count("UpdateDomainRecord"), 0);
}

#[test]
fn verify_interval_zero_always_checks_but_never_updates_needlessly() {
    let env = Env::with_global("verify_interval=0", WWW_A);
    env.sim.add_record("example.com", "www", "A", "203.0.113.7", 600, "default");
    for _ in 0..2 {
        let o = env.run(&["update"]);
        assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 unchanged");
    }
    assert_eq!(env.sim.count("DescribeSubDomainRecords"), 2);
    assert_eq!(env.sim.count("UpdateDomainRecord"), 0);
}

#[test]
fn missing_record_is_reported_or_created() {
    let env = Env::new(WWW_A);
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 missing");
    assert!(env.sim.records("example.com").is_empty());

    let env = Env::new("[www]\ndomain=example.com\nsub_domain=www\ncreate=true\nttl=600\n");
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 created");
    assert_eq!(env.value_of("example.com", "www", "A"), vec!["203.0.113.7"]);
}

#[test]
fn aaaa_from_the_kernel_and_suffix_for_a_lan_host() {
    let env = Env::new(
        "[home6]\ndomain=example.com\nsub_domain=home\ntype=AAAA\ninterface=pppoe-wan\ncreate=true\n\
         [nas6]\ndomain=example.com\nsub_domain=nas\ntype=AAAA\ninterface=br-lan\nipv6_suffix=::11:22ff:fe33:4455\ncreate=true\n\
         [auto6]\ndomain=example.org\nsub_domain=@\ntype=AAAA\ninterface=auto\ncreate=true\n",
    );
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", out(&o), err(&o));
    // Stable, non-deprecated global address of pppoe-wan (not the temporary one, not the old prefix).
    assert_eq!(env.value_of("example.com", "home", "AAAA"), vec!["240e:38a:6c1b:2e00:211:22ff:fe33:4455"]);
    assert_eq!(env.value_of("example.com", "nas", "AAAA"), vec!["240e:38a:6c1b:2e01:11:22ff:fe33:4455"]);
    assert_eq!(env.value_of("example.org", "@", "AAAA"), vec!["240e:38a:6c1b:2e00:211:22ff:fe33:4455"]);
}

#[test]
fn several_records_and_domains_in_one_pass() {
    let env = Env::new(
        "[a]\ndomain=example.com\nsub_domain=www\ncreate=true\n\
         [b]\ndomain=example.com\nsub_domain=@\ncreate=true\n\
         [c]\ndomain=example.com\nsub_domain=*\ncreate=true\n\
         [d]\ndomain=example.org\nsub_domain=a.b\ncreate=true\n\
         [e]\ndomain=example.org\nsub_domain=vpn\nline=telecom\ncreate=true\n",
    );
    env.sim.add_record("example.org", "vpn", "A", "198.51.100.5", 600, "default");
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o).lines().count(), 5);
    assert!(out(&o).lines().all(|l| l.ends_with(" created")), "{}", out(&o));
    assert_eq!(env.value_of("example.com", "*", "A"), vec!["203.0.113.7"]);
    assert_eq!(env.value_of("example.org", "a.b", "A"), vec!["203.0.113.7"]);
    // The default-line record of vpn is untouched; a telecom-line one was created.
    let vpn: Vec<_> = env.sim.records("example.org").into_iter().filter(|r| r.rr == "vpn").collect();
    assert_eq!(vpn.len(), 2);
    assert!(vpn.iter().any(|r| r.line == "default" && r.value == "198.51.100.5"));
    assert!(vpn.iter().any(|r| r.line == "telecom" && r.value == "203.0.113.7"));
    // One echo request serves all five records.
    assert_eq!(env.echo.hits(), 1);
}

#[test]
fn duplicates_on_a_line_update_one_and_delete_none() {
    let env = Env::new(WWW_A);
    let first = env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    let second = env.sim.add_record("example.com", "www", "A", "198.51.100.2", 600, "default");
    let o = env.run(&["update"]);
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 updated");
    assert!(err(&o).contains("2 records"), "{}", err(&o));
    let recs = env.sim.records("example.com");
    assert_eq!(recs.len(), 2, "never delete");
    assert_eq!(recs.iter().find(|r| r.id == first).unwrap().value, "203.0.113.7");
    assert_eq!(recs.iter().find(|r| r.id == second).unwrap().value, "198.51.100.2");
}

#[test]
fn throttling_and_server_errors_are_recovered() {
    let env = Env::new(WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    env.sim.inject(Fault::Throttle { count: 1, action: Some("DescribeSubDomainRecords".into()) });
    env.sim.inject(Fault::ServerError { count: 1, status: 503, action: Some("UpdateDomainRecord".into()) });
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 updated");
    assert_eq!(env.value_of("example.com", "www", "A"), vec!["203.0.113.7"]);
}

#[test]
fn a_dropped_connection_during_update_is_retried_without_a_duplicate() {
    let env = Env::new("[www]\ndomain=example.com\nsub_domain=www\ncreate=true\n");
    env.sim.inject(Fault::Drop { count: 1, action: Some("AddDomainRecord".into()) });
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(env.value_of("example.com", "www", "A"), vec!["203.0.113.7"]);
}

#[test]
fn an_hour_of_clock_skew_is_recovered() {
    let env = Env::new(WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    env.sim.set_clock_offset(3600);
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 updated");
    assert!(err(&o).contains("clock is off by"), "{}", err(&o));
    // The offset is learned once and kept for the rest of the run.
    let expired = env.sim.calls().iter().filter(|c| c.code.as_deref() == Some("InvalidTimeStamp.Expired")).count();
    assert_eq!(expired, 1);
}

#[test]
fn persistent_failure_is_reported_with_code_and_exit_1() {
    let env = Env::with_global("retries=1", WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    env.sim.inject(Fault::Throttle { count: 10, action: None });
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).trim().starts_with("www.example.com A 203.0.113.7 failed: Throttling.User: "), "{}", out(&o));
}

#[test]
fn two_concurrent_runs_leave_no_duplicate() {
    let env = Env::new("[www]\ndomain=example.com\nsub_domain=www\ncreate=true\n");
    env.sim.inject(Fault::Delay { count: 4, ms: 150, action: None });
    let a = env.cmd(&["update"]).spawn().unwrap();
    let b = env.cmd(&["update"]).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", err(&a));
    assert!(b.status.success(), "{}", err(&b));
    assert_eq!(env.value_of("example.com", "www", "A"), vec!["203.0.113.7"]);
    assert_eq!(env.sim.count("AddDomainRecord"), 1, "the second run waits and finds it current");
}

#[test]
fn a_burst_of_triggers_costs_one_queued_pass_and_none_runs_unlocked() {
    use std::io::{BufRead, BufReader};
    let env = Env::new(WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    // A pass died mid-save here once; the next save replaces what it left.
    std::fs::write(env.dir.join("state.tmp"), "{").unwrap();
    // This test is the running pass: it holds the pass lock.
    let running = std::fs::File::create(env.dir.join("state.lock")).unwrap();
    running.lock().unwrap();
    let mut queued = env.cmd(&["update"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut queued_err = BufReader::new(queued.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("this one starts when it ends") {
        assert!(queued_err.read_line(&mut seen).unwrap() > 0, "the second pass did not queue: {seen}");
    }
    // Every further trigger ends at once: the queued pass reads the address after it.
    for _ in 0..3 {
        let o = env.run(&["update"]);
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
        assert_eq!(out(&o), "", "it reports no record");
        assert!(err(&o).contains("one more is queued after it"), "{}", err(&o));
    }
    assert_eq!(env.sim.count("*"), 0, "nothing ran beside the running pass");
    assert!(env.dir.join("state.tmp").exists(), "only a save under the lock replaces it");
    drop(running);
    let o = queued.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 updated");
    assert_eq!(env.sim.count("UpdateDomainRecord"), 1);
    assert!(!env.dir.join("state.tmp").exists());
}

#[test]
fn two_concurrent_runs_with_separate_state_files_leave_no_duplicate() {
    let env = Env::new("[www]\ndomain=example.com\nsub_domain=www\ncreate=true\n");
    let other = env.dir.join("other.conf");
    let text = std::fs::read_to_string(&env.conf).unwrap().replace("/state\n", "/state2\n");
    std::fs::write(&other, text).unwrap();
    env.sim.inject(Fault::Delay { count: 4, ms: 150, action: Some("DescribeSubDomainRecords".into()) });
    let a = env.cmd(&["update"]).spawn().unwrap();
    let b = aliddns().arg("-c").arg(&other).arg("update").spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{}{}", err(&a), err(&b));
    assert_eq!(env.value_of("example.com", "www", "A"), vec!["203.0.113.7"]);
}

#[test]
fn a_corrupt_state_file_is_survived() {
    let env = Env::new(WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    std::fs::write(env.dir.join("state"), "{not json at all\u{0}").unwrap();
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(err(&o).contains("corrupt"), "{}", err(&o));
    let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(env.dir.join("state")).unwrap()).unwrap();
    assert_eq!(st["records"]["www.example.com|A|default"]["value"], "203.0.113.7");
}

#[test]
fn dry_run_changes_nothing() {
    let env = Env::new(&format!("{WWW_A}[new]\ndomain=example.com\nsub_domain=new\ncreate=true\n"));
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    let o = env.run(&["update", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(text.contains("www.example.com A 203.0.113.7 dry-run: would update record"), "{text}");
    assert!(text.contains("new.example.com A 203.0.113.7 dry-run: would create"), "{text}");
    assert_eq!(env.sim.count("UpdateDomainRecord") + env.sim.count("AddDomainRecord"), 0);
    assert_eq!(env.value_of("example.com", "www", "A"), vec!["198.51.100.1"]);
    assert!(!env.dir.join("state").exists(), "a dry run writes no state");

    // Without credentials it still detects the address and says what it would compare.
    let nocreds = env.dir.join("nocreds.conf");
    std::fs::write(
        &nocreds,
        format!("[DEFAULT]\nip_urls={}\nstate_file={}/s\n{WWW_A}", env.echo.url, env.dir.display()),
    )
    .unwrap();
    let o = aliddns().arg("-c").arg(&nocreds).args(["update", "--dry-run"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).contains("www.example.com A 203.0.113.7 dry-run: would compare"), "{}", out(&o));
}

#[test]
fn on_change_hook_gets_the_change() {
    let env = Env::new(WWW_A);
    let log = env.dir.join("hook.log");
    let conf = std::fs::read_to_string(&env.conf).unwrap().replacen(
        "[DEFAULT]\n",
        &format!(
            "[DEFAULT]\non_change=echo \"$ALIDDNS_ACTION $ALIDDNS_NAME $ALIDDNS_TYPE $ALIDDNS_OLD $ALIDDNS_NEW\" >> {}\n",
            log.display()
        ),
        1,
    );
    std::fs::write(&env.conf, conf).unwrap();
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    assert!(env.run(&["update"]).status.success());
    assert!(env.run(&["update"]).status.success());
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "updated www.example.com A 198.51.100.1 203.0.113.7\n",
        "the hook runs once, on the change only"
    );
}

#[test]
fn echo_garbage_is_rejected() {
    let env = Env::new(WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    env.echo.set("<html>blocked</html>");
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).starts_with("www.example.com A - failed: "), "{}", out(&o));
    assert_eq!(env.sim.count("UpdateDomainRecord"), 0);
}

#[test]
fn the_original_ddns_conf_works_unchanged() {
    // The Python client's example file with only the keys filled in; the NIC
    // feature is enabled on loopback-free fixture data, so no network is needed.
    let sim = Sim::start();
    sim.add_domain("example.com");
    let id = sim.add_record("example.com", "www", "A", "192.0.2.1", 600, "default");
    let dir = tempdir("orig");
    let conf = dir.join("ddns.conf");
    let echo = Echo::start("203.0.113.7");
    std::fs::write(
        &conf,
        "[DEFAULT]\n# access id obtains from aliyun\naccess_id=testid\n# access key obtains from aliyun\naccess_key=testsecret\n\
         # it is not used at this moment, you can just ignore it\ninterval=600\n# turn on debug mode or not\ndebug=true\n\n\
         [DomainRecord1]\n# domain name, like google.com\ndomain=example.com\n# subdomain name, like www, blog, bbs, *, @, ...\n\
         sub_domain=www\n# resolve type, 'A', 'AAAA'..., currently it only supports 'A'\ntype=A\n\n\
         [feature_public_ip_from_nic]\nenable=false\ninterface=eth0\n",
    )
    .unwrap();
    // The only things that differ from a router: where AliDNS and the echo service are.
    let o = aliddns()
        .arg("-c")
        .arg(&conf)
        .args(["--endpoint", &sim.endpoint(), "update"])
        .env("ALIDDNS_IP_URLS", &echo.url)
        .env("ALIDDNS_STATE_FILE", dir.join("state"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 updated");
    assert!(err(&o).contains("debug: "), "debug=true turns on verbose output");
    assert_eq!(sim.records("example.com").into_iter().find(|r| r.id == id).unwrap().value, "203.0.113.7");
}

#[test]
fn echo_urls_ignore_proxy_variables() {
    // Through a proxy the echo answer would be the proxy's address; a dead proxy shows
    // whether the request went through it.
    let env = Env::new(WWW_A);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let proxy = format!("http://127.0.0.1:{port}");
    let mut cmd = env.cmd(&["ip", "--family", "4"]);
    for var in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY"] {
        cmd.env(var, &proxy);
    }
    let o = cmd.output().expect("run aliddns");
    assert_eq!(out(&o), "203.0.113.7\n", "{}", err(&o));
    assert_eq!(env.echo.hits(), 1);
}

#[test]
fn ip_prints_the_chosen_address() {
    let env = Env::new(WWW_A);
    let o = env.run(&["ip", "--interface", "pppoe-wan", "--family", "6"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "240e:38a:6c1b:2e00:211:22ff:fe33:4455\n");
    let o = env.run(&["-v", "ip", "--interface", "pppoe-wan", "--family", "6"]);
    let e = err(&o);
    assert!(e.contains("fe80::a1b2:c3d4:e5f6:718") && e.contains("240e:38a:6c1b:2e00:85a3:c4e2:f1d0:7b9a"), "{e}");
    let o = env.run(&["ip", "--family", "4"]);
    assert_eq!(out(&o), "203.0.113.7\n", "{}", err(&o));
    let o = env.run(&["ip", "--interface", "nosuch0", "--family", "6"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).is_empty());
}

#[test]
fn run_passes_on_sigusr1_and_stops_on_sigterm() {
    let env = Env::with_global("interval=3600", WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    let mut child = env.cmd(&["run"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let wait_for = |pred: &dyn Fn() -> bool| {
        let start = std::time::Instant::now();
        while !pred() {
            assert!(start.elapsed().as_secs() < 20, "timed out");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait_for(&|| env.value_of("example.com", "www", "A") == vec!["203.0.113.7"]);
    env.echo.set("203.0.113.8");
    let pid = child.id().to_string();
    let kill = |sig: &str| assert!(Command::new("kill").args(["-s", sig, &pid]).status().unwrap().success());
    kill("USR1");
    wait_for(&|| env.value_of("example.com", "www", "A") == vec!["203.0.113.8"]);
    kill("TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

#[test]
fn private_nic_address_falls_back_to_echo_urls() {
    let env = Env::with_global("[feature_public_ip_from_nic]\nenable=true\ninterface=eth0.2\n", WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    let ipv4 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc/dualwan/ipv4-addrs");
    let o = env.cmd(&["update"]).env("ALIDDNS_IPV4_ADDRS", &ipv4).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    // eth0.2 has only a CGNAT address: warn, then ask the echo URL.
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 updated");
    assert!(err(&o).contains("100.64.12.34"), "{}", err(&o));
    assert_eq!(env.echo.hits(), 1);
}

#[test]
fn a_router_clock_in_1970_still_updates() {
    // The server is ~56 years ahead of the local clock: exactly what a router that
    // booted without an RTC sees before NTP.
    let env = Env::new(WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    env.sim.set_clock_offset(now - 86_400);
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 updated");
    assert!(err(&o).contains("clock is off by"), "{}", err(&o));
}

#[test]
fn the_shipped_openwrt_config_dry_runs() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("openwrt/files/aliddns.config");
    // As shipped: disabled, so nothing to do, and no error.
    let o = aliddns().arg("-c").arg(&sample).args(["update", "--dry-run"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(err(&o).contains("disabled"), "{}", err(&o));
    // Enabled with its first example uncommented: the plan names the record.
    let env = Env::new("");
    let text = std::fs::read_to_string(&sample)
        .unwrap()
        .replace("option enabled '0'", "option enabled '1'")
        .replace("#config record 'home4'", "config record 'home4'")
        .replace(
            "#\toption domain 'example.com'\n#\toption rr 'home'\n#\toption type 'A'",
            "\toption domain 'example.com'\n\toption rr 'home'\n\toption type 'A'",
        )
        .replacen(
            "option access_id ''",
            &format!("option ip_urls '{}'\n\toption state_file '{}/s'", env.echo.url, env.dir.display()),
            1,
        );
    let conf = env.dir.join("aliddns");
    std::fs::write(&conf, text).unwrap();
    let o = aliddns().arg("-c").arg(&conf).args(["update", "--dry-run"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(
        out(&o).trim(),
        "home.example.com A 203.0.113.7 dry-run: would compare with home.example.com A on line default at AliDNS (no credentials)"
    );
}

/// The state file as JSON.
fn state_json(env: &Env) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(env.dir.join("state")).unwrap()).unwrap()
}

#[test]
fn a_missing_record_is_reported_on_every_pass_and_never_cached() {
    let env = Env::new(WWW_A);
    for pass in 1..=3 {
        let o = env.run(&["update"]);
        assert_eq!(o.status.code(), Some(1), "pass {pass}: {}", err(&o));
        assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 missing", "pass {pass}");
        assert_eq!(env.sim.count("DescribeSubDomainRecords"), pass, "every pass asks AliDNS again");
    }
    let e = &state_json(&env)["records"]["www.example.com|A|default"];
    assert!(e["value"].is_null() && e["record_id"].is_null(), "the state claims nothing: {e}");
    assert_eq!(e["result"], "missing");
    // Once the record exists, the next pass finds it (and only then caches it).
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    let o = env.run(&["update"]);
    assert_eq!((o.status.code(), out(&o).trim()), (Some(0), "www.example.com A 203.0.113.7 updated"));
}

#[test]
fn a_failed_record_is_reported_on_every_pass() {
    let env = Env::with_global("retries=0", WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    env.sim.inject(Fault::Throttle { count: 2, action: Some("UpdateDomainRecord".into()) });
    for pass in 1..=2 {
        let o = env.run(&["update"]);
        assert_eq!(o.status.code(), Some(1), "pass {pass}");
        assert!(out(&o).contains("failed: Throttling.User"), "pass {pass}: {}", out(&o));
    }
    assert_eq!(env.sim.count("UpdateDomainRecord"), 2);
    let o = env.run(&["update"]);
    assert_eq!((o.status.code(), out(&o).trim()), (Some(0), "www.example.com A 203.0.113.7 updated"));
}

/// Runs a pass that cannot write any file (RLIMIT_FSIZE 0, as a full disk does; it
/// binds root too), with SIGXFSZ ignored so writes fail instead of killing it.
fn run_without_disk_space(env: &Env, args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = env.cmd(args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit { rlim_cur: 0, rlim_max: libc::RLIM_INFINITY };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("run aliddns")
}

#[test]
fn a_failed_state_save_leaves_no_stale_claim() {
    let env = Env::new(WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    assert!(env.run(&["update"]).status.success());
    // A redial to a new address while the state cannot be saved.
    env.echo.set("203.0.113.99\n");
    let o = run_without_disk_space(&env, &["update"]);
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.99 updated", "{}", err(&o));
    assert!(err(&o).contains("cannot write state file"), "{}", err(&o));
    // Back to the first address within verify_interval: the old claim must not be trusted.
    env.echo.set("203.0.113.7\n");
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 updated");
    assert_eq!(env.value_of("example.com", "www", "A"), vec!["203.0.113.7"]);
}

#[test]
fn an_oversized_state_file_is_ignored_and_rewritten() {
    let env = Env::new(WWW_A);
    env.sim.add_record("example.com", "www", "A", "203.0.113.7", 600, "default");
    let big = format!(
        "{{\"version\":2,\"records\":{{\"www.example.com|A|default\":{{\"value\":\"203.0.113.7\",\"record_id\":\"1\",\
         \"checked_at\":{},\"changed_at\":null,\"result\":\"unchanged\",\"error\":null}}}}}}{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        " ".repeat(2 << 20)
    );
    std::fs::write(env.dir.join("state"), big).unwrap();
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(err(&o).contains("larger than"), "{}", err(&o));
    assert_eq!(env.sim.count("DescribeSubDomainRecords"), 1, "the oversized file is not trusted");
    assert!(std::fs::metadata(env.dir.join("state")).unwrap().len() < 4096, "rewritten");
}

#[test]
fn environment_lists_replace_the_files_lists() {
    let env = Env::new(WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    let other = Echo::start("203.0.113.50\n");
    let o = env.cmd(&["update"]).env("ALIDDNS_IP_URLS", &other.url).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.50 updated");
    assert_eq!(env.echo.hits(), 0, "the file's ip_urls are not asked");
}

#[test]
fn verbose_signature_mismatch_masks_the_access_key_id() {
    let env = Env::new(WWW_A);
    env.sim.add_key("LTAI5tSimKeyId9876", "the-right-secret");
    let text = std::fs::read_to_string(&env.conf).unwrap().replace("access_id=testid", "access_id=LTAI5tSimKeyId9876");
    std::fs::write(&env.conf, text).unwrap();
    let o = env.run(&["-v", "domains"]);
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    assert!(e.contains("SignatureDoesNotMatch"), "{e}");
    assert!(e.contains("our    string to sign") && e.contains("server string to sign"), "{e}");
    assert!(e.matches("LTAI****9876").count() >= 2, "both strings show the masked ID: {e}");
    assert!(!e.contains("LTAI5tSimKeyId9876") && !e.contains("testsecret"), "{e}");
}

#[test]
fn config_syntax_errors_never_print_a_secret() {
    let dir = tempdir("secret");
    for (name, text) in [
        ("ini.conf", "[DEFAULT]\naccess_id=LTAIx\naccess_key MYSECRET0123\n"),
        ("cont.conf", "[DEFAULT]\ninterval=600x\n  access_key=MYSECRET0123\n"),
        (
            "aliddns",
            "config global 'global'\n\toption interval '300\n\toption access_key 'MYSECRET0123'\n\toption debug 1'\n",
        ),
        ("aliddns2", "config global 'global'\n\toption access_key 'MYSECRET0123\n\toption access_id 'LTAIx'\n"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let o = aliddns().arg("-c").arg(&path).args(["update", "--dry-run"]).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{name}");
        let e = err(&o);
        assert!(e.contains(&format!("{}:", path.display())), "names the file: {e}");
        assert!(!e.contains("MYSECRET0123"), "{name}: {e}");
    }
}

/// `aliddns status --json` for `env`.
fn status_json(env: &Env) -> serde_json::Value {
    let o = env.run(&["status", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    serde_json::from_str(&out(&o)).unwrap_or_else(|e| panic!("{e}: {}", out(&o)))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn status_before_and_after_a_pass_field_by_field() {
    let env =
        Env::new(&format!("{WWW_A}[off]\nenabled=0\ndomain=example.org\nsub_domain=@\ntype=AAAA\nline=telecom\n"));
    let id = env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    let v = status_json(&env);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["config", "records", "running", "state_file"]);
    assert_eq!(v["config"], env.conf.display().to_string());
    assert_eq!(v["state_file"], env.dir.join("state").display().to_string());
    assert_eq!(v["running"], false);
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len(), 2);
    let www = recs[0].as_object().unwrap();
    let mut keys: Vec<&str> = www.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "changed_at",
            "checked_at",
            "domain",
            "enabled",
            "error",
            "line",
            "name",
            "record_id",
            "result",
            "rr",
            "section",
            "type",
            "value"
        ]
    );
    let expect = serde_json::json!({"section": "www", "name": "www.example.com", "domain": "example.com", "rr": "www",
        "type": "A", "line": "default", "enabled": true, "value": null, "record_id": null, "changed_at": null,
        "checked_at": null, "result": "never", "error": null});
    assert_eq!(recs[0], expect);
    let off = serde_json::json!({"section": "off", "name": "example.org", "domain": "example.org", "rr": "@",
        "type": "AAAA", "line": "telecom", "enabled": false, "value": null, "record_id": null, "changed_at": null,
        "checked_at": null, "result": "disabled", "error": null});
    assert_eq!(recs[1], off);
    assert_eq!(env.sim.count("*"), 0, "status asks nothing of AliDNS");

    let before = now();
    assert!(env.run(&["update"]).status.success());
    let v = status_json(&env);
    let r = &v["records"][0];
    assert_eq!((r["result"].as_str(), r["value"].as_str()), (Some("updated"), Some("203.0.113.7")));
    assert_eq!(r["record_id"], id);
    assert!(r["error"].is_null());
    for k in ["changed_at", "checked_at"] {
        let t = r[k].as_i64().unwrap_or_else(|| panic!("{k}: {r}"));
        assert!((before..=now()).contains(&t), "{k}: {t}");
    }
    assert_eq!(v["records"][1], off);

    // The text form: a daemon line, a header, one aligned line per record.
    let o = env.run(&["status"]);
    assert_eq!(o.status.code(), Some(0));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("daemon: not running"), "{text}");
    assert!(lines[1].starts_with("NAME") && lines[1].contains("RESULT"), "{text}");
    let col = lines[1].find("RESULT").unwrap();
    assert!(lines[2].starts_with("www.example.com") && lines[2][col..].starts_with("updated"), "{text}");
    assert!(lines[2].contains("203.0.113.7") && lines[2].contains("s ago"), "{text}");
    assert!(lines[3].starts_with("example.org") && lines[3][col..].starts_with("disabled"), "{text}");
}

#[test]
fn status_after_a_failure_and_for_a_missing_record() {
    let env = Env::with_global(
        "retries=0",
        &format!("{WWW_A}[gone]\ndomain=example.com\nsub_domain=gone\n[nas]\ndomain=example.com\nsub_domain=nas\n"),
    );
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    env.sim.add_record("example.com", "nas", "A", "203.0.113.7", 600, "default");
    env.sim.inject(Fault::Error {
        count: 1,
        status: 403,
        code: "Forbidden.RAM".into(),
        message: "User not authorized to operate on the specified resource.".into(),
        action: Some("UpdateDomainRecord".into()),
    });
    let o = env.run(&["update"]);
    assert_eq!(o.status.code(), Some(1));
    let v = status_json(&env);
    let r = &v["records"][0];
    assert_eq!(r["result"], "failed");
    assert_eq!(r["error"], "Forbidden.RAM: User not authorized to operate on the specified resource.");
    assert!(r["value"].is_null(), "a failed change leaves the value unknown: {r}");
    assert!(r["checked_at"].is_i64(), "AliDNS answered: {r}");
    let gone = &v["records"][1];
    assert_eq!(gone["result"], "missing");
    assert!(gone["value"].is_null() && gone["record_id"].is_null() && gone["error"].is_string(), "{gone}");
    let nas = &v["records"][2];
    assert_eq!((nas["result"].as_str(), nas["value"].as_str()), (Some("unchanged"), Some("203.0.113.7")));
    assert!(nas["changed_at"].is_null(), "we never changed it: {nas}");
    let text = out(&env.run(&["status"]));
    assert!(text.contains("Forbidden.RAM: User not authorized"), "{text}");

    // A local failure (no address) keeps the last published value, marked failed.
    env.echo.set("not an address\n");
    env.run(&["update"]);
    let nas = &status_json(&env)["records"][2];
    assert_eq!((nas["result"].as_str(), nas["value"].as_str()), (Some("failed"), Some("203.0.113.7")));
    assert!(nas["error"].as_str().unwrap().contains("not an address"), "{nas}");
}

#[test]
fn status_needs_no_credentials_and_exits_2_on_a_config_error() {
    let dir = tempdir("status");
    let conf = dir.join("c.conf");
    std::fs::write(&conf, format!("[DEFAULT]\nstate_file={}/s\n{WWW_A}", dir.display())).unwrap();
    let o = aliddns().arg("-c").arg(&conf).args(["status", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["records"][0]["result"], "never");
    assert!(!dir.join("s").exists() && !dir.join("s.daemon").exists(), "status creates nothing");
    std::fs::write(&conf, "[DEFAULT]\ninterval=soon\n").unwrap();
    let o = aliddns().arg("-c").arg(&conf).arg("status").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn an_unchanged_pass_does_not_rewrite_the_state_file() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new(WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    assert!(env.run(&["update"]).status.success());
    let path = env.dir.join("state");
    let meta = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.ino(), m.mtime(), m.mtime_nsec())
    };
    let before = meta(&path);
    std::thread::sleep(std::time::Duration::from_millis(20));
    env.sim.reset_calls();
    for _ in 0..2 {
        let o = env.run(&["update"]);
        assert_eq!(out(&o).trim(), "www.example.com A 203.0.113.7 unchanged");
    }
    assert_eq!(env.sim.count("*"), 0);
    assert_eq!(meta(&path), before, "no write when nothing changed");
    // A verify (--force asks AliDNS) records when it looked: that is a change.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(env.run(&["update", "--force"]).status.success());
    assert_ne!(meta(&path), before);
}

#[test]
fn status_sees_a_running_daemon_but_not_an_update() {
    let env = Env::with_global("interval=3600", WWW_A);
    env.sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    // A pass from cron or hotplug holds the pass lock, not the daemon's.
    env.sim.inject(Fault::Delay { count: 1, ms: 1500, action: None });
    let update = env.cmd(&["update"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(status_json(&env)["running"], false);
    assert!(update.wait_with_output().unwrap().status.success());

    let mut child = env.cmd(&["run"]).stderr(std::process::Stdio::null()).spawn().unwrap();
    let start = std::time::Instant::now();
    while status_json(&env)["running"] != true {
        assert!(start.elapsed().as_secs() < 20, "the daemon never showed as running");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(out(&env.run(&["status"])).starts_with("daemon: running"));
    assert_eq!(status_json(&env)["running"], true, "probing does not disturb it");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-s", "TERM", &pid]).status().unwrap().success());
    assert!(child.wait().unwrap().success());
    assert_eq!(status_json(&env)["running"], false);
}
