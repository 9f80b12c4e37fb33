//! The load generator must keep working: a few seconds of full cycles on
//! each delivery path, with zero errors. Speed is not asserted here; the
//! figures live in docs/benchmarks.md.

use assent_tests::process::bench_binary;
use serde_json::Value;

async fn bench(args: &[&str]) -> Value {
    let output = tokio::process::Command::new(bench_binary())
        .args([
            "--concurrency",
            "4",
            "--duration",
            "2",
            "--warmup",
            "0.5",
            "--json",
        ])
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn the_load_generator_completes_cycles_without_errors() {
    for args in [
        vec!["--delivery", "events"],
        vec!["--delivery", "push"],
        vec!["--database", "postgres"],
    ] {
        let report = bench(&args).await;
        assert_eq!(report["errors"], 0, "{args:?}: {report}");
        assert!(report["cycles"].as_u64().unwrap() > 0, "{args:?}: {report}");
        assert!(report["server_cpu_seconds"].as_f64().unwrap() > 0.0);
        assert!(report["server_peak_rss_mib"].as_f64().unwrap() > 1.0);
        for step in [
            "bc_authorize",
            "device_notified",
            "fetch_challenge",
            "approve",
            "token",
        ] {
            assert!(
                report["steps"][step]["p50_ms"].as_f64().unwrap() > 0.0,
                "{step}"
            );
        }
    }
}

#[tokio::test]
async fn the_scale_options_fill_a_backlog_and_hold_idle_streams() {
    let report = bench(&["--backlog", "1500", "--idle-streams", "6"]).await;
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["cycles"].as_u64().unwrap() > 0, "{report}");
    // The backlog's users have no device: every one of those requests is
    // still pending at the end (the cycles' own requests are all answered).
    assert_eq!(report["pending_requests_at_end"], 1500, "{report}");
    assert_eq!(report["idle_streams_open_at_end"], 6, "{report}");
    assert!(report["server_rss_mib"]["max"].as_f64().unwrap() > 1.0);
}
