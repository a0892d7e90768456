//! Where an event's identity comes from when its content cannot say: deliveries the webhook
//! translations store raw.

use serde_json::json;

use crate::limits::{github_event, gitlab_event};

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
