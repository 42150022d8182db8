//! Talking to the broker as a plain NATS client does, for the NATS tests
//! of the library and of the CLI: waiting for instances to come and go,
//! reading the services protocol's answers and its error headers.

use std::time::Duration;

use serde_json::Value as Json;
use tether::nats::async_nats;

/// Safety bound on instances registering or leaving (milliseconds, here).
const BOUND: Duration = Duration::from_secs(60);

/// Wait (bounded) until `count` instances of `name` list `endpoint` in
/// their `$SRV.INFO`: instances add their method endpoints when they start
/// serving, just after registering.
pub async fn wait_for(client: &async_nats::Client, name: &str, count: usize, endpoint: &str) {
    tokio::time::timeout(BOUND, async {
        loop {
            let found = tether::nats::instances(client, name).await.unwrap();
            let mut ready = 0;
            for instance in &found {
                let subject = format!("$SRV.INFO.{name}.{}", instance.id);
                let Ok(info) = request_json(client, &subject).await else {
                    continue;
                };
                let listed = info["endpoints"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["name"] == endpoint));
                ready += usize::from(listed);
            }
            if ready == count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the instances did not register in time");
}

/// The instances `calc` finds, once (bounded) it finds `count` of them:
/// one discovery may miss an instance slower than its quiet spell, so a
/// test that needs them all asks until it has them, then connects among
/// them with [`Connector::connect_among`](tether::nats::Connector::connect_among).
pub async fn all_instances(
    calc: &tether::nats::Connector,
    count: usize,
) -> Vec<tether::nats::Instance> {
    tokio::time::timeout(BOUND, async {
        loop {
            let found = calc.instances().await.unwrap();
            if found.len() == count {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the instances were not all found in time")
}

/// Wait (bounded) until the broker has dropped instance `id` of `name`:
/// its own `$SRV.PING` subject has no subscriber any more.
pub async fn wait_gone(client: &async_nats::Client, name: &str, id: &str) {
    wait_no_responders(client, &format!("$SRV.PING.{name}.{id}")).await;
}

/// Wait (bounded) until nobody subscribes to `subject` any more. A
/// subscriber that has just gone may still take a request without
/// answering; each try gives up on that after a second (not the client's
/// 10 s) and asks again, so the wait ends soon after the broker knows.
pub async fn wait_no_responders(client: &async_nats::Client, subject: &str) {
    tokio::time::timeout(BOUND, async {
        loop {
            let request = async_nats::Request::new()
                .payload("".into())
                .timeout(Some(Duration::from_secs(1)));
            match client.send_request(subject.to_string(), request).await {
                Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => return,
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{subject} still has subscribers"));
}

/// The JSON answer to an empty request on `subject`.
pub async fn request_json(
    client: &async_nats::Client,
    subject: &str,
) -> Result<Json, async_nats::RequestError> {
    let answer = client.request(subject.to_string(), "".into()).await?;
    Ok(serde_json::from_slice(&answer.payload).expect("a JSON answer"))
}

/// Whether the broker answers a request of `body` on `subject` with "no
/// responders" (nobody subscribes to it).
pub async fn no_responders(client: &async_nats::Client, subject: &str, body: &str) -> bool {
    matches!(
        client.request(subject.to_string(), body.to_string().into()).await,
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders
    )
}

/// The `Nats-Service-Error-Code` and `Nats-Service-Error` of an answer;
/// panics when it carries none.
pub fn service_error(answer: &async_nats::Message) -> (String, String) {
    let err = tether::nats::service_error(answer)
        .unwrap_or_else(|| panic!("an error answer, not {answer:?}"));
    (err.code.to_string(), err.status)
}
