//! Housekeeping: what expired is deleted, in batches, and nothing else.

use assent_server::{client_auth::AuthMethod, keys::TokenAlg, storage::PURGE_BATCH};
use assent_tests::{client::create_user, count, execute, on_both_backends, TestClient, TestServer};

on_both_backends! {
    async fn purge_deletes_expired_records_in_batches_and_keeps_the_rest(backend: Backend) {
        let server = TestServer::start(backend).await;
        let store = server.store();
        create_user(store, "alice", None, None).await;
        let client = TestClient::register(store, AuthMethod::ClientSecretBasic, TokenAlg::ES256).await;
        let now = assent_server::clock::now_ms();
        let retention_ms = 3_600_000;

        // More expired `jti`s than two full batches, and a few live ones.
        let expired_jtis = 2 * PURGE_BATCH + 7;
        execute(store, &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {expired_jtis}) \
             INSERT INTO used_jtis (issuer, jti, expires_at) \
             SELECT 'test', 'expired-' || i, {} FROM n", now - 1
        )).await;
        for i in 0..3 {
            execute(store, &format!(
                "INSERT INTO used_jtis (issuer, jti, expires_at) VALUES ('test', 'live-{i}', {})",
                now + 60_000
            )).await;
        }

        // Three requests: two expired longer ago than the retention, one not.
        let mut ids = Vec::new();
        for _ in 0..3 {
            let ack = client.start(&server, "alice", "openid").await;
            ids.push(assent_tests::request_id(store, ack["auth_req_id"].as_str().unwrap()).await);
        }
        for id in &ids[..2] {
            let changed = execute(store, &format!(
                "UPDATE auth_requests SET expires_at = {} WHERE id = '{id}'",
                now - retention_ms - 1
            )).await;
            assert_eq!(changed, 1);
        }

        let purged = store.purge_expired(now, retention_ms).await.unwrap();
        assert_eq!(purged.jtis, expired_jtis as u64);
        assert_eq!(purged.auth_requests, 2);
        assert_eq!(count(store, "SELECT COUNT(*) FROM used_jtis WHERE jti LIKE 'expired-%'").await, 0);
        assert_eq!(count(store, "SELECT COUNT(*) FROM used_jtis WHERE jti LIKE 'live-%'").await, 3);
        let kept = count(store, &format!("SELECT COUNT(*) FROM auth_requests WHERE id = '{}'", ids[2])).await;
        assert_eq!(kept, 1);
        assert_eq!(count(store, "SELECT COUNT(*) FROM auth_requests").await, 1);

        // A second run finds nothing left to delete.
        let again = store.purge_expired(now, retention_ms).await.unwrap();
        assert_eq!((again.jtis, again.auth_requests), (0, 0));
    }
}
