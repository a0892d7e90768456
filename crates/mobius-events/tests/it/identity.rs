//! Where an event's identity and origin come from when its content cannot say: deliveries
//! GitHub's translation stores raw, and recorded deliveries in import files and batches.

use mobius_events::cloudevents::Decoded;
use mobius_events::{Origin, record};
use serde_json::json;

use crate::limits::{decode, event, github_event, github_push, gitlab_event};

#[test]
fn a_delivery_without_content_identity_is_its_id_and_its_body() {
    let body = json!({ "action": "completed", "repository": { "full_name": "acme/app", "name": "app" } });
    let other = json!({ "action": "requested", "repository": { "full_name": "acme/app", "name": "app" } });
    let first = github_event("check_suite", Some("d-1"), &body).unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.to_string()));
    assert_eq!(first.id, format!("d-1:sha256:{digest}"));
    // The same delivery again is a duplicate; a different body under its id is not.
    assert_eq!(github_event("check_suite", Some("d-1"), &body).unwrap().id, first.id);
    assert_ne!(github_event("check_suite", Some("d-1"), &other).unwrap().id, first.id);
    // Without a delivery id, the body alone.
    assert_eq!(github_event("check_suite", None, &body).unwrap().id, format!("sha256:{digest}"));
    // GitLab sends no delivery identity in the body; hooks stored raw are their body's digest.
    let note = |text: &str| {
        json!({
            "object_kind": "note",
            "project": { "path_with_namespace": "acme/app", "name": "app" },
            "object_attributes": { "note": text },
        })
    };
    assert_ne!(gitlab_event(&note("a")).unwrap().id, gitlab_event(&note("b")).unwrap().id);
    assert_eq!(gitlab_event(&note("a")).unwrap().id, gitlab_event(&note("a")).unwrap().id);
}

#[test]
fn recorded_deliveries_are_imports() {
    let github_record = json!({ "webhook": "github", "event": "push", "payload": github_push("2024-05-01T12:00:00Z") });
    let gitlab_record = json!({
        "webhook": "gitlab",
        "event": "Note Hook",
        "payload": { "object_kind": "note", "project": { "path_with_namespace": "acme/app", "name": "app" } },
    });
    for record in [&github_record, &gitlab_record] {
        let event = record::parse(&record.to_string(), Origin::Api).unwrap();
        assert_eq!(event.origin, Origin::Import, "{record}");
    }
    // A CDEvent in the same file keeps the origin of the door it came through.
    assert_eq!(record::parse(&event().to_string(), Origin::Api).unwrap().origin, Origin::Api);
    // So does a recorded delivery in a batch over HTTP.
    let body = format!("{github_record}\n{}\n", event());
    match decode("application/x-ndjson", &body) {
        Ok(Decoded::Batch(items)) => {
            let origins: Vec<Origin> = items.into_iter().map(|i| i.unwrap().origin).collect();
            assert_eq!(origins, [Origin::Import, Origin::Api]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(Origin::parse("import"), Some(Origin::Import));
    assert_eq!(Origin::Import.as_str(), "import");
}
