//! The conformance cases of the administration traits (issue 18) that
//! every backend passes: [`Taxonomies`](crate::Taxonomies) (custom event
//! types: edits persist, are seen by the query that authenticates a key,
//! stay in their account, refused or empty edits store nothing, concurrent
//! edits lose none) and [`TwoFactor`](crate::TwoFactor) (enrolment,
//! a time step accepted once, recovery codes used once, the account's
//! requirement). Listed in `conformance`'s one list of cases.

use crate::{Role, Scope, Store, StoreError};
use auditlog_core::taxonomy::TaxonomyEdit;
use auditlog_core::Timestamp;

fn add_type(name: &str, actions: &[&str]) -> TaxonomyEdit {
    TaxonomyEdit::AddType {
        name: name.into(),
        actions: actions.iter().map(|a| a.to_string()).collect(),
    }
}

pub async fn taxonomy_edits_persist_in_their_account_and_lose_none(store: &dyn Store) {
    let acme = store.create_account("conf-tax-acme").await.unwrap();
    let other = store.create_account("conf-tax-other").await.unwrap();
    store
        .create_api_key(acme.id, [41; 32], &[Scope::Ingest])
        .await
        .unwrap();

    // An edit answers what `Taxonomy::apply` answers, and is stored.
    let edit = add_type("Defect", &["Triage"]);
    let expected = acme.taxonomy.apply(&edit).unwrap().unwrap();
    let outcome = store.edit_taxonomy(acme.id, &edit).await.unwrap();
    assert_eq!(outcome, Ok(Some(expected.clone())));
    let stored = store.account_by_id(acme.id).await.unwrap().unwrap();
    assert_eq!(stored.taxonomy, expected.0);
    assert!(stored.taxonomy.event_type("Defect").is_some());
    let by_name = store
        .account_by_name("conf-tax-acme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_name.taxonomy, expected.0);
    // The query that authenticates a key hands out the edited taxonomy.
    let grant = store.api_key_by_hash([41; 32]).await.unwrap().unwrap();
    assert_eq!(grant.account.taxonomy, expected.0);
    // Other accounts keep theirs.
    let untouched = store.account_by_id(other.id).await.unwrap().unwrap();
    assert_eq!(untouched.taxonomy, other.taxonomy);
    assert!(untouched.taxonomy.event_type("Defect").is_none());

    // A refused edit (the type exists) stores nothing and names its field.
    let refused = store.edit_taxonomy(acme.id, &edit).await.unwrap();
    let error = refused.expect_err("adding an existing type is refused");
    assert_eq!(error.field, "name");
    assert_eq!(
        store
            .account_by_id(acme.id)
            .await
            .unwrap()
            .unwrap()
            .taxonomy,
        expected.0
    );

    // Retiring: stored; retiring again changes nothing (`None`).
    let retire = TaxonomyEdit::RetireType {
        event_type: "Defect".into(),
    };
    let (retired, _) = store
        .edit_taxonomy(acme.id, &retire)
        .await
        .unwrap()
        .unwrap()
        .expect("a change");
    assert!(retired.event_type("Defect").unwrap().retired);
    assert_eq!(
        store
            .account_by_id(acme.id)
            .await
            .unwrap()
            .unwrap()
            .taxonomy,
        retired
    );
    assert_eq!(
        store.edit_taxonomy(acme.id, &retire).await.unwrap(),
        Ok(None)
    );

    // An account that does not exist.
    assert!(matches!(
        store.edit_taxonomy(acme.id + other.id + 1_000, &edit).await,
        Err(StoreError::NotFound(_))
    ));

    // Concurrent edits of one type: each lands, none is lost.
    store
        .edit_taxonomy(other.id, &add_type("Ticket", &["Open"]))
        .await
        .unwrap()
        .unwrap();
    let step = |i: usize| TaxonomyEdit::AddAction {
        event_type: "Ticket".into(),
        action: format!("Step {i}"),
    };
    let (e0, e1, e2, e3) = (step(0), step(1), step(2), step(3));
    let (r0, r1, r2, r3) = tokio::join!(
        store.edit_taxonomy(other.id, &e0),
        store.edit_taxonomy(other.id, &e1),
        store.edit_taxonomy(other.id, &e2),
        store.edit_taxonomy(other.id, &e3),
    );
    for result in [r0, r1, r2, r3] {
        assert!(matches!(result, Ok(Ok(Some(_)))), "{result:?}");
    }
    let ticket = store.account_by_id(other.id).await.unwrap().unwrap();
    let actions = &ticket.taxonomy.event_type("Ticket").unwrap().actions;
    for i in 0..4 {
        assert!(
            actions.contains(&format!("Step {i}")),
            "Step {i} was lost: {actions:?}"
        );
    }
}

pub async fn two_factor_codes_are_accepted_once_per_step(store: &dyn Store) {
    let account = store.create_account("conf-2fa").await.unwrap();
    let other = store.create_account("conf-2fa-other").await.unwrap();
    let ada = store
        .create_user(account.id, "ada@conf.test", "$argon2id$fake", Role::Admin)
        .await
        .unwrap();
    let bob = store
        .create_user(account.id, "bob@conf.test", "$argon2id$fake", Role::Member)
        .await
        .unwrap();
    let t = |s: i64| Timestamp::from_micros(1_700_000_000_000_000 + s * 1_000_000);

    assert_eq!(store.two_factor(ada.id).await.unwrap(), None);
    assert!(!store.accept_two_factor_step(ada.id, 10).await.unwrap());
    assert!(!store
        .confirm_two_factor(ada.id, 10, &[], t(0))
        .await
        .unwrap());

    // Begun: pending until confirmed; beginning again replaces the secret.
    store
        .begin_two_factor(ada.id, b"sealed-1", t(0))
        .await
        .unwrap();
    store
        .begin_two_factor(ada.id, b"sealed-2", t(1))
        .await
        .unwrap();
    let pending = store.two_factor(ada.id).await.unwrap().unwrap();
    assert_eq!(pending.sealed_secret, b"sealed-2");
    assert_eq!((pending.confirmed_at, pending.last_step), (None, None));

    // Confirmed with the code of step 100 and three recovery codes.
    let codes = [[1u8; 32], [2; 32], [3; 32]];
    assert!(store
        .confirm_two_factor(ada.id, 100, &codes, t(2))
        .await
        .unwrap());
    assert!(
        !store
            .confirm_two_factor(ada.id, 101, &codes, t(3))
            .await
            .unwrap(),
        "confirmed once"
    );
    let record = store.two_factor(ada.id).await.unwrap().unwrap();
    assert_eq!(record.confirmed_at, Some(t(2)));
    assert_eq!(record.last_step, Some(100));
    assert!(matches!(
        store.begin_two_factor(ada.id, b"sealed-3", t(4)).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        store
            .two_factor(ada.id)
            .await
            .unwrap()
            .unwrap()
            .sealed_secret,
        b"sealed-2",
        "a confirmed secret is not replaced"
    );

    // Each step once, and never an earlier one.
    assert!(!store.accept_two_factor_step(ada.id, 100).await.unwrap());
    assert!(store.accept_two_factor_step(ada.id, 101).await.unwrap());
    assert!(!store.accept_two_factor_step(ada.id, 101).await.unwrap());
    assert!(!store.accept_two_factor_step(ada.id, 99).await.unwrap());
    assert!(store.accept_two_factor_step(ada.id, 105).await.unwrap());
    assert_eq!(
        store.two_factor(ada.id).await.unwrap().unwrap().last_step,
        Some(105)
    );

    // Recovery codes: each once, only the user's own.
    assert_eq!(store.recovery_codes_left(ada.id).await.unwrap(), 3);
    assert!(store
        .use_recovery_code(ada.id, [2; 32], t(5))
        .await
        .unwrap());
    assert!(!store
        .use_recovery_code(ada.id, [2; 32], t(6))
        .await
        .unwrap());
    assert!(!store
        .use_recovery_code(ada.id, [9; 32], t(6))
        .await
        .unwrap());
    assert!(!store
        .use_recovery_code(bob.id, [1; 32], t(6))
        .await
        .unwrap());
    assert_eq!(store.recovery_codes_left(ada.id).await.unwrap(), 2);
    assert_eq!(store.two_factor(bob.id).await.unwrap(), None);

    // Turned off: the enrolment and the codes are gone; it can begin again.
    assert!(store.disable_two_factor(ada.id).await.unwrap());
    assert!(!store.disable_two_factor(ada.id).await.unwrap());
    assert_eq!(store.two_factor(ada.id).await.unwrap(), None);
    assert_eq!(store.recovery_codes_left(ada.id).await.unwrap(), 0);
    assert!(!store
        .use_recovery_code(ada.id, [1; 32], t(7))
        .await
        .unwrap());
    store
        .begin_two_factor(ada.id, b"sealed-4", t(8))
        .await
        .unwrap();
    assert!(store
        .confirm_two_factor(ada.id, 50, &[[4; 32]], t(9))
        .await
        .unwrap());
    assert_eq!(
        store.two_factor(ada.id).await.unwrap().unwrap().last_step,
        Some(50),
        "a new enrolment starts its own steps"
    );
    assert_eq!(store.recovery_codes_left(ada.id).await.unwrap(), 1);

    // The account's requirement: off by default, per account, returns the
    // previous value.
    assert!(!store.two_factor_required(account.id).await.unwrap());
    assert!(!store
        .set_two_factor_required(account.id, true)
        .await
        .unwrap());
    assert!(store
        .set_two_factor_required(account.id, true)
        .await
        .unwrap());
    assert!(store.two_factor_required(account.id).await.unwrap());
    assert!(!store.two_factor_required(other.id).await.unwrap());
    assert!(store
        .set_two_factor_required(account.id, false)
        .await
        .unwrap());
    assert!(!store.two_factor_required(account.id).await.unwrap());
}
