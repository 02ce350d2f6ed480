//! The AliDNS commands (`domains`, `lines`, `records ...`) run as the real binary
//! against the signature-checking simulator.

mod common;

use alidns_sim::{Fault, Sim};
use common::{TempDir, aliddns, tempdir};
use std::path::PathBuf;
use std::process::Output;

struct Env {
    sim: Sim,
    conf: PathBuf,
    _dir: TempDir,
}

fn setup(extra: &str) -> Env {
    let sim = Sim::start();
    sim.add_domain("example.com");
    sim.add_domain("example.org");
    let dir = tempdir("records");
    let conf = dir.join("aliddns.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\naccess_id=testid\naccess_key=testsecret\nendpoint={}\nretry_delay_ms=10\n{extra}",
            sim.endpoint()
        ),
    )
    .unwrap();
    Env { sim, conf, _dir: dir }
}

fn run(env: &Env, args: &[&str]) -> Output {
    aliddns().arg("-c").arg(&env.conf).args(args).output().expect("run aliddns")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn domains_lists_every_domain_across_pages() {
    let env = setup("");
    for i in 0..130 {
        env.sim.add_domain(&format!("zone{i:03}.net"));
    }
    let o = run(&env, &["domains"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 132, "{out}");
    assert!(lines.contains(&"example.com") && lines.contains(&"zone129.net"));
    assert!(env.sim.count("DescribeDomains") >= 2, "paged with PageSize 100");
    let o = run(&env, &["--json", "domains"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 132);
}

#[test]
fn lines_prints_code_and_name() {
    let env = setup("");
    let o = run(&env, &["lines", "example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.lines().any(|l| l.starts_with("default ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("telecom ")), "{out}");
    let o = run(&env, &["lines", "example.com", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.as_array().unwrap().iter().any(|l| l["code"] == "unicom"));
}

#[test]
fn records_add_list_update_delete() {
    let env = setup("");
    let o = run(&env, &["records", "add", "example.com", "www", "A", "203.0.113.7", "--ttl", "600"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert!(!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()), "{id}");
    let o = run(&env, &["records", "add", "example.com", "@", "TXT", "v=spf1 include:spf.example.net ~all"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = run(&env, &["records", "list", "example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.lines().any(|l| l == format!("{id} www A 203.0.113.7 600 default Enable")), "{out}");
    assert!(out.contains("@ TXT v=spf1 include:spf.example.net ~all"), "{out}");

    let o = run(&env, &["records", "list", "example.com", "--rr", "www", "--type", "a", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 1, "{v}");
    assert_eq!(arr[0]["id"], id.as_str());
    assert_eq!(arr[0]["ttl"], 600);

    let o = run(&env, &["records", "update", &id, "www", "A", "203.0.113.8"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), format!("updated {id}"));
    let rec = env.sim.records("example.com").into_iter().find(|r| r.id == id).unwrap();
    assert_eq!((rec.value.as_str(), rec.ttl, rec.line.as_str()), ("203.0.113.8", 600, "default"));

    // Identical values: reported as unchanged, exit 0, and no UpdateDomainRecord sent.
    env.sim.reset_calls();
    let o = run(&env, &["records", "update", &id, "www", "A", "203.0.113.8"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), format!("unchanged {id}"));
    assert_eq!(env.sim.count("UpdateDomainRecord"), 0);

    let o = run(&env, &["records", "delete", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), format!("deleted {id}"));
    assert!(env.sim.records("example.com").iter().all(|r| r.id != id));
}

#[test]
fn every_request_is_signed_freshly() {
    let env = setup("");
    run(&env, &["records", "add", "example.com", "a", "A", "198.51.100.1"]);
    run(&env, &["records", "list", "example.com"]);
    run(&env, &["domains"]);
    let calls = env.sim.calls();
    assert!(calls.len() >= 3);
    assert!(calls.iter().all(|c| c.status == 200), "{:?}", calls.iter().map(|c| &c.code).collect::<Vec<_>>());
    let mut nonces: Vec<&String> = calls.iter().map(|c| &c.params["SignatureNonce"]).collect();
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), calls.len(), "a nonce was reused");
}

#[test]
fn duplicate_add_and_unknown_record_fail_with_code_and_message() {
    let env = setup("");
    assert!(run(&env, &["records", "add", "example.com", "www", "A", "203.0.113.7"]).status.success());
    let o = run(&env, &["records", "add", "example.com", "www", "A", "203.0.113.7"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("DomainRecordDuplicate"), "{}", stderr(&o));
    let o = run(&env, &["records", "delete", "424242"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("DomainRecordNotBelongToUser"), "{}", stderr(&o));
    let o = run(&env, &["records", "add", "example.com", "low", "A", "203.0.113.9", "--ttl", "60"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("QuotaExceeded.TTL"), "{}", stderr(&o));
}

#[test]
fn unknown_domain_fails() {
    let env = setup("");
    let o = run(&env, &["records", "list", "nosuch.example"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("InvalidDomainName.NoExist"), "{}", stderr(&o));
}

#[test]
fn bad_secret_fails_and_never_prints_the_secret() {
    let env = setup("");
    let conf = std::fs::read_to_string(&env.conf).unwrap().replace("testsecret", "wrongsecret-abcdef");
    std::fs::write(&env.conf, conf).unwrap();
    let o = run(&env, &["-v", "domains"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
    assert!(err.contains("server string to sign: POST&%2F&"), "verbose shows the server's string-to-sign: {err}");
    assert!(err.contains("our    string to sign: POST&%2F&"), "{err}");
    assert!(!err.contains("wrongsecret-abcdef"), "secret leaked: {err}");
    // Not retried: a wrong secret does not get better.
    assert_eq!(env.sim.count("DescribeDomains"), 1);
}

#[test]
fn unknown_access_key_fails() {
    let env = setup("");
    let conf = std::fs::read_to_string(&env.conf).unwrap().replace("access_id=testid", "access_id=nosuchkey");
    std::fs::write(&env.conf, conf).unwrap();
    let o = run(&env, &["domains"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("InvalidAccessKeyId.NotFound"), "{}", stderr(&o));
}

#[test]
fn throttling_and_server_errors_are_retried() {
    let env = setup("");
    env.sim.inject(Fault::Throttle { count: 2, action: None });
    let o = run(&env, &["domains"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(env.sim.count("DescribeDomains"), 3);
    assert!(stderr(&o).contains("Throttling"), "retries are logged: {}", stderr(&o));

    env.sim.reset_calls();
    env.sim.inject(Fault::ServerError { count: 1, status: 503, action: None });
    env.sim.inject(Fault::Drop { count: 1, action: None });
    let o = run(&env, &["domains"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(env.sim.count("DescribeDomains"), 3);
}

#[test]
fn persistent_throttling_gives_up_with_code() {
    let env = setup("retries=2\n");
    env.sim.inject(Fault::Throttle { count: 10, action: None });
    let o = run(&env, &["domains"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Throttling.User"), "{}", stderr(&o));
    assert_eq!(env.sim.count("DescribeDomains"), 3);
}

#[test]
fn clock_skew_is_corrected_from_the_date_header() {
    let env = setup("");
    env.sim.set_clock_offset(3600);
    let o = run(&env, &["domains"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("clock is off by"), "{}", stderr(&o));
    assert_eq!(env.sim.count("DescribeDomains"), 2);
}

#[test]
fn credentials_from_environment_and_sts_token() {
    let env = setup("");
    env.sim.add_key_with_token("stsid", "stssecret", "CAIS+token/with=chars");
    let conf = env.conf.with_file_name("env.conf");
    std::fs::write(&conf, format!("[DEFAULT]\nendpoint={}\n", env.sim.endpoint())).unwrap();
    let o = aliddns()
        .arg("-c")
        .arg(&conf)
        .arg("domains")
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "stsid")
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "stssecret")
        .env("ALIBABA_CLOUD_SECURITY_TOKEN", "CAIS+token/with=chars")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("example.com"));
}

#[test]
fn missing_credentials_name_both_ways() {
    let env = setup("");
    let conf = env.conf.with_file_name("nocreds.conf");
    std::fs::write(&conf, format!("[DEFAULT]\nendpoint={}\n", env.sim.endpoint())).unwrap();
    let o = aliddns().arg("-c").arg(&conf).arg("domains").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("access_id") && err.contains("ALIBABA_CLOUD_ACCESS_KEY_ID"), "{err}");
}

#[test]
fn endpoint_flag_overrides_config() {
    let env = setup("");
    let conf = env.conf.with_file_name("wrong-endpoint.conf");
    std::fs::write(&conf, "[DEFAULT]\naccess_id=testid\naccess_key=testsecret\nendpoint=http://127.0.0.1:9/\n")
        .unwrap();
    let o = aliddns().arg("-c").arg(&conf).args(["--endpoint", &env.sim.endpoint(), "domains"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let env = setup("");
    for args in [
        &["records", "add", "example.com", "www"][..],
        &["records", "frob"][..],
        &["records", "list", "example.com", "--ttl", "x"][..],
        &["nosuchcommand"][..],
    ] {
        let o = run(&env, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    for args in [&["--help"][..], &["records", "--help"][..], &["domains", "-h"][..], &["lines", "--help"][..]] {
        let o = run(&env, args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(stdout(&o).contains("Usage"), "{args:?}");
    }
    let o = aliddns().arg("--version").output().unwrap();
    assert!(o.status.success());
    assert!(stdout(&o).starts_with("aliddns "));
    assert_eq!(env.sim.count("*"), 0, "usage errors make no API call");
}
