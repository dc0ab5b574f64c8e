//! A fresh PostgreSQL database for each world, so that the soak never meets the server's own
//! PostgreSQL tests (they take fresh schemas of `CAIRN_TEST_POSTGRES_URL`'s database).

use tokio_postgres::NoTls;

/// A database made for one world and dropped with it.
pub struct FreshDb {
    admin: String,
    name: String,
    /// The URL servers are given.
    pub url: String,
}

impl FreshDb {
    /// A new database on the server `CAIRN_TEST_POSTGRES_URL` names; None (said) without it.
    pub fn create(scenario: &str) -> Option<FreshDb> {
        let Ok(admin) = std::env::var("CAIRN_TEST_POSTGRES_URL") else {
            println!("soak {scenario}: skipped: CAIRN_TEST_POSTGRES_URL is not set");
            return None;
        };
        let name = format!("cairn_soak_{}", hex::encode(rand::random::<[u8; 6]>()));
        execute(&admin, &format!("CREATE DATABASE {name}"));
        let url = with_database(&admin, &name);
        Some(FreshDb { admin, name, url })
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        execute(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// `url` with its database replaced by `name` (its parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let path = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    let query = url[path..].find('?').map_or("", |i| &url[path + i..]);
    format!("{}/{name}{query}", &url[..path])
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn execute(url: &str, sql: &str) {
    block_on(async {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .expect("connect to PostgreSQL");
        let conn = tokio::spawn(connection);
        client.batch_execute(sql).await.expect(sql);
        drop(client);
        let _ = conn.await;
    });
}

/// Rows of `sql` as (bytes, count, count).
pub fn query(url: &str, sql: &str) -> Vec<(Vec<u8>, i64, i64)> {
    block_on(async {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .expect("connect to PostgreSQL");
        let conn = tokio::spawn(connection);
        // Before the first server made its tables there is nothing to count.
        let rows = match client.query(sql, &[]).await {
            Ok(rows) => rows,
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
                Vec::new()
            }
            Err(e) => panic!("{sql}: {e}"),
        };
        drop(client);
        let _ = conn.await;
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    })
}

#[test]
fn the_database_is_swapped_and_parameters_kept() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/test?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgresql://h:1", "x"), "postgresql://h:1/x");
}
