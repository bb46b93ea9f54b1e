//! The crypto-shredding key ring against real PostgreSQL (docs/trust.md):
//! existing data keys are read, never replaced, on a cache miss; a master
//! key rotation keeps every key readable while `rewrap` moves the keys over,
//! and leaves erased customers erased; a caller's wrong guess that a
//! customer is new still gets the stored key.

use event_store::postgres::MIGRATOR;
use event_store::postgres::keys::{KeyRing, KeyRingOptions, KeyState, Rewrapped};
use event_store::trust::shred::MasterKey;
use sqlx::PgPool;
use std::sync::Arc;

fn ring(pool: &PgPool, master: &Arc<MasterKey>) -> KeyRing {
    KeyRing::new(pool.clone(), master.clone(), KeyRingOptions::default())
}

async fn wrapped_by(pool: &PgPool, customer: &str) -> (Option<Vec<u8>>, String) {
    sqlx::query_as("SELECT wrapped_key, master_key_id FROM customer_keys WHERE customer_id = $1")
        .bind(customer)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_cache_miss_reads_the_existing_key_and_creates_only_new_ones(pool: PgPool) {
    let master = Arc::new(MasterKey::from_bytes(&[3; 32]));
    let first = ring(&pool, &master);
    let keys = first.keys_for(&["a", "b"]).await.unwrap();
    let sealed = keys["a"].seal("a", b"203.0.113.7").unwrap();
    let stored_a = wrapped_by(&pool, "a").await;

    // Another replica (an empty cache) asks for a, b and a new customer c.
    let second = ring(&pool, &master);
    let keys = second.keys_for(&["c", "a", "b", "a"]).await.unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys["a"].open("a", &sealed).unwrap(), b"203.0.113.7");
    assert_eq!(
        wrapped_by(&pool, "a").await,
        stored_a,
        "an existing key's row is not rewritten"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM customer_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 3);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_master_key_rotation_keeps_every_key_readable(pool: PgPool) {
    let old = Arc::new(MasterKey::from_bytes(&[1; 32]));
    let new = Arc::new(MasterKey::from_bytes(&[2; 32]));
    let before = ring(&pool, &old);
    let keys = before.keys_for(&["a", "b", "c"]).await.unwrap();
    let sealed = keys["a"].seal("a", b"Mozilla/5.0").unwrap();
    before.erase("c").await.unwrap();

    // The new key alone cannot read what the old one wrapped...
    assert!(ring(&pool, &new).keys_for(&["a"]).await.is_err());
    // ...with the old one as previous it can, and creates new keys under
    // the new one.
    let during = ring(&pool, &new).with_previous(Some(old.clone()));
    let keys = during.keys_for(&["a", "d"]).await.unwrap();
    assert_eq!(keys["a"].open("a", &sealed).unwrap(), b"Mozilla/5.0");
    assert_eq!(wrapped_by(&pool, "d").await.1, new.key_id);
    assert_eq!(during.left_to_rewrap().await.unwrap(), 2);

    let mut pages = Vec::new();
    let done = during.rewrap(1, |n| pages.push(n)).await.unwrap();
    assert_eq!(
        done,
        Rewrapped {
            keys: 2,
            erased: 1,
            other: 0
        }
    );
    assert_eq!(pages, vec![1, 2], "one page per row with a page size of 1");
    assert_eq!(during.left_to_rewrap().await.unwrap(), 0);
    assert_eq!(
        during.rewrap(1000, |_| {}).await.unwrap(),
        Rewrapped::default(),
        "a second run has nothing to do"
    );

    // After the rotation the new key alone reads everything; the erased
    // customer stays erased.
    let after = ring(&pool, &new);
    let keys = after.keys_for(&["a", "b"]).await.unwrap();
    assert_eq!(keys["a"].open("a", &sealed).unwrap(), b"Mozilla/5.0");
    assert!(matches!(
        after.lookup(&["c"]).await.unwrap().get("c"),
        Some(KeyState::Erased { .. })
    ));
    let old_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM customer_keys WHERE master_key_id = $1")
            .bind(&old.key_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(old_rows, 0, "no row names the retired key");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn rewrap_needs_a_previous_key(pool: PgPool) {
    let master = Arc::new(MasterKey::from_bytes(&[4; 32]));
    let error = ring(&pool, &master)
        .rewrap(10, |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("SENTINEL_PREVIOUS_MASTER_KEY"), "{error}");
    // The same key as previous is no rotation at all.
    let same = ring(&pool, &master).with_previous(Some(master.clone()));
    assert!(same.rewrap(10, |_| {}).await.is_err());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_erased_customer_who_comes_back_gets_a_new_key(pool: PgPool) {
    let master = Arc::new(MasterKey::from_bytes(&[5; 32]));
    let keys = ring(&pool, &master);
    let first = keys.key_for("a").await.unwrap();
    let sealed = first.seal("a", b"203.0.113.9").unwrap();
    keys.erase("a").await.unwrap();
    // A fresh ring (no cache), as another replica would be.
    let second = ring(&pool, &master).key_for("a").await.unwrap();
    assert_eq!(second.generation, first.generation + 1);
    assert!(
        second.open("a", &sealed).is_err(),
        "the old ciphertext stays unreadable"
    );
    let again = ring(&pool, &master).key_for("a").await.unwrap();
    let resealed = second.seal("a", b"x").unwrap();
    assert_eq!(
        again.open("a", &resealed).unwrap(),
        b"x",
        "the new key is the stored one"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_wrong_hint_of_a_new_customer_still_gives_the_stored_key(pool: PgPool) {
    let master = Arc::new(MasterKey::from_bytes(&[6; 32]));
    // A right guess: the plain insert stores exactly the keys it hands out.
    let right = ring(&pool, &master)
        .keys_for_hinted(&["f", "g", "h"], |_| true)
        .await
        .unwrap();
    for customer in ["f", "g", "h"] {
        let sealed = right[customer].seal(customer, b"x").unwrap();
        let stored = ring(&pool, &master).key_for(customer).await.unwrap();
        assert_eq!(stored.open(customer, &sealed).unwrap(), b"x", "{customer}");
    }

    // "a" got a key for refused input (no stream), "e" was erased: a
    // caller that finds their streams empty takes them for new customers.
    let earlier = ring(&pool, &master);
    let a = earlier.key_for("a").await.unwrap();
    let sealed = a.seal("a", b"198.51.100.4").unwrap();
    let e = earlier.key_for("e").await.unwrap();
    earlier.erase("e").await.unwrap();

    let hinted = ring(&pool, &master);
    let keys = hinted
        .keys_for_hinted(&["a", "b", "e", "c"], |c| c != "c")
        .await
        .unwrap();
    assert_eq!(keys.len(), 4);
    assert_eq!(
        keys["a"].open("a", &sealed).unwrap(),
        b"198.51.100.4",
        "the stored key, not a new one"
    );
    assert_eq!(keys["e"].generation, e.generation + 1, "erased: a new key");
    // What the ring handed out is what is stored, for every customer.
    for customer in ["a", "b", "e", "c"] {
        let sealed = keys[customer].seal(customer, b"x").unwrap();
        let stored = ring(&pool, &master).key_for(customer).await.unwrap();
        assert_eq!(stored.open(customer, &sealed).unwrap(), b"x", "{customer}");
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM customer_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 7);
}
