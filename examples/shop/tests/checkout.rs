//! The gateway's `POST /checkout` as a newcomer meets it: the `curl` commands README.md's
//! "The demo shop" shows, run exactly as written against a started shop and held to the
//! output README.md shows; and bad input, answered with a 4xx that says what to send.
//! Real PostgreSQL and Redis, the embedded Kafka broker.

use graylane_testkit::services::unique;
use shop::{Checkout, Customer, Options, Shop};

const README: &str = include_str!("../../../README.md");

/// Starts a shop as `--serve` does (10% mirrored); one at a time, since each provisions the
/// same schemas at start-up.
async fn start() -> Shop {
    static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = STARTING.lock().await;
    shop::start(Options::default()).await.unwrap()
}

/// A command of README.md's console block and the output it shows.
#[derive(Debug)]
struct Example {
    command: String,
    output: String,
}

/// The `$ ...` commands of the console block of "The demo shop", each with the lines up to
/// the next blank line.
fn examples() -> Vec<Example> {
    let section = README
        .split_once("\n## The demo shop\n")
        .expect("README.md has a section \"The demo shop\"")
        .1;
    let section = section.split("\n## ").next().unwrap();
    let block = section
        .split_once("```console\n")
        .expect("the demo section has a console block")
        .1;
    let block = block.split_once("\n```").unwrap().0;
    block
        .split("\n\n")
        .map(|example| {
            let (command, output) = example.split_once('\n').unwrap_or((example, ""));
            let command = command
                .strip_prefix("$ ")
                .unwrap_or_else(|| panic!("not a command: {command:?}"));
            Example {
                command: command.to_owned(),
                output: format!("{output}\n"),
            }
        })
        .collect()
}

/// Shell words, with single quotes (all the README's commands use).
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            ' ' if !quoted => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(!quoted, "unbalanced quotes in {command:?}");
    words.extend(word);
    words
}

/// The request a `curl -s -XPOST localhost:8080/checkout -H 'name: value' ... -d body` sends:
/// its headers and body.
fn request(command: &str) -> (Vec<(String, String)>, String) {
    let words = words(command);
    assert_eq!(words[0], "curl", "{command}");
    let (mut headers, mut body, mut url) = (Vec::new(), None, None);
    let mut args = words[1..].iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-s" | "-XPOST" => {}
            "-H" => {
                let header = args.next().expect("-H takes a header");
                let (name, value) = header.split_once(": ").expect("-H 'name: value'");
                headers.push((name.to_owned(), value.to_owned()));
            }
            "-d" => {
                body = args.next().cloned();
                // What curl sends with -d.
                headers.push((
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ));
            }
            other if url.is_none() && !other.starts_with('-') => url = Some(other.to_owned()),
            other => panic!("{command}: the test does not know curl's {other}"),
        }
    }
    assert_eq!(
        url.as_deref(),
        Some("localhost:8080/checkout"),
        "the shop that --serve keeps: {command}"
    );
    (headers, body.unwrap_or_default())
}

async fn send(shop: &Shop, headers: &[(String, String)], body: &str) -> Checkout {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Customer::new(shop.gateway())
        .post(&headers, body)
        .await
        .unwrap()
}

/// The base orders of `request_id`.
async fn orders(shop: &Shop, request_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM shop.orders WHERE request_id = $1")
        .bind(request_id)
        .fetch_one(shop.admin())
        .await
        .unwrap()
}

#[test]
fn the_readme_shows_commands_and_their_output() {
    let examples = examples();
    assert!(examples.len() >= 3, "{examples:?}");
    for example in &examples {
        let (headers, _) = request(&example.command);
        assert!(
            headers.iter().all(|(name, _)| name != "x-request-id"),
            "a newcomer need not make up request ids: {}",
            example.command
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_commands_print_what_the_readme_shows() {
    let shop = start().await;
    for example in examples() {
        let (headers, body) = request(&example.command);
        let answer = send(&shop, &headers, &body).await;
        assert_eq!(answer.path, example.output, "$ {}", example.command);
        if answer.status.is_success() {
            assert!(answer.request_id.is_some(), "{answer:?}");
        }
    }
    shop.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_that_says_what_to_send() {
    let shop = start().await;
    let user = ("x-user-id".to_owned(), "alice".to_owned());
    let with_id = |id: &str| vec![user.clone(), ("x-request-id".to_owned(), id.to_owned())];

    // A request id with a space: 400, naming the header and what it takes.
    let answer = send(&shop, &with_id("demo 1"), "book").await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(
        answer.path,
        "x-request-id: expected 1 to 64 ASCII letters, digits, '-', '_', '.' or ':' \
         (or no header, for one to be made), got \"demo 1\"\n"
    );

    // An item the shop does not sell: 404, naming it, and not a word of the database's.
    let id = unique("bad_item");
    let answer = send(&shop, &with_id(&id), "chair").await;
    assert_eq!(answer.status, 404, "{answer:?}");
    assert_eq!(
        answer.path,
        "unknown item \"chair\" (the shop sells book, lamp, pen)\n"
    );
    assert!(!answer.path.contains("constraint"), "{answer:?}");
    assert_eq!(orders(&shop, &id).await, 0, "a refused order is not stored");

    // No request id at all: the gateway makes one, and says which.
    let answer = send(&shop, std::slice::from_ref(&user), "book").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let made = answer.request_id.expect("the answer names the request id");
    assert_eq!(
        orders(&shop, &made).await,
        1,
        "the order is stored under the id the gateway made"
    );
    shop.shutdown().await.unwrap();
}
