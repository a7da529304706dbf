//! A store whose metadata is in PostgreSQL (dumped by the operator's Job with the host's
//! pg_dump) and whose content is a volume, backed up with quiesce None while a writer archives:
//! every restored metadata row has its content; the reversed capture order loses content.

mod backup_support;

use std::sync::Arc;

use archivist_e2e::testing::databases::Postgres;
use archivist_e2e::testing::with_namespace;
use backup_support::sql::{metadata_then_content, DATABASE};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn postgres_metadata_is_cut_before_content() {
    let db = Arc::new(Postgres::start(DATABASE).expect("PostgreSQL"));
    with_namespace("bk-pg", move |client, ns| metadata_then_content(client, ns, db)).await;
}
