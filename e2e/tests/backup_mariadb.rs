//! A store whose metadata is in MariaDB (dumped by the operator's Job with the host's
//! mariadb-dump) and whose content is a volume, backed up with quiesce None while a writer archives:
//! every restored metadata row has its content; the reversed capture order loses content.

mod backup_support;

use std::sync::Arc;

use archivist_e2e::testing::databases::MariaDb;
use archivist_e2e::testing::with_namespace;
use backup_support::sql::{metadata_then_content, DATABASE};

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn mariadb_metadata_is_cut_before_content() {
    let db = Arc::new(MariaDb::start(DATABASE).expect("MariaDB"));
    with_namespace("bk-maria", move |client, ns| metadata_then_content(client, ns, db)).await;
}
