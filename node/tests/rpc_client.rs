//! `RpcClient` and `BlockingRpcClient` against the real server backed by an in-memory node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod rpc_fake;

use banyan_core::ids::{Address, AssetId, ChainId};
use banyan_node::rpc::client::{BlockingRpcClient, RpcClient, RpcError};
use banyan_node::rpc::server::RpcLimits;
use banyan_node::rpc::{NOT_FOUND, REJECTED, UNAVAILABLE, UNKNOWN_CHAIN};
use rpc_fake::*;

#[tokio::test]
async fn round_trips_every_method() {
    let s = start(RpcLimits::default()).await;
    let client = RpcClient::new(&s.url()).unwrap();

    assert_eq!(client.status().await.unwrap(), status_view());
    assert_eq!(client.block(None).await.unwrap(), block_view(TIP));
    assert_eq!(client.block(Some(1)).await.unwrap(), block_view(1));
    assert_eq!(client.validators().await.unwrap(), validators_view());

    let tx = transfer(1, 0, 10);
    let submitted = client.submit_tx(&tx).await.unwrap();
    assert_eq!(submitted.id, tx.id().to_hex());
    let account = client
        .account(ChainId::MAIN, tx.sender(), AssetId::NATIVE)
        .await
        .unwrap();
    assert_eq!((account.nonce, account.balance.as_str()), (1, "1000"));

    let txs = vec![transfer(1, 1, 1), transfer(1, 5, 1), transfer(1, 2, 1)];
    let results = client.submit_txs(&txs).await.unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap().id, txs[0].id().to_hex());
    assert_eq!(results[1].as_ref().unwrap_err().code(), Some(REJECTED));
    assert_eq!(results[2].as_ref().unwrap().id, txs[2].id().to_hex());
    assert!(client.submit_txs(&[]).await.unwrap().is_empty());

    // JSON-RPC errors keep their code and message.
    let e = client.block_on(ChainId::MAIN, Some(40)).await.unwrap_err();
    assert_eq!(e.code(), Some(NOT_FOUND));
    assert!(e.to_string().contains("no block at height 40"), "{e}");
    let e = client
        .validators_on(ChainId(OFFLINE_CHAIN))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(UNAVAILABLE));
    let e = client
        .account(ChainId(5), Address([1; 32]), AssetId::NATIVE)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(UNKNOWN_CHAIN));
    assert!(!e.is_transport());
    s.shutdown().await;
}

#[tokio::test]
async fn transport_error_when_nothing_listens() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = RpcClient::new(&url).unwrap();
    let e = client.status().await.unwrap_err();
    assert!(e.is_transport(), "{e:?}");
    let message = e.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot reach the node at {url}: is `banyan start` running?"
        )),
        "{message}"
    );
}

#[test]
fn invalid_urls_are_refused() {
    for url in [
        "127.0.0.1:8545",
        "https://127.0.0.1:8545",
        "http://",
        "not a url",
    ] {
        let e = RpcClient::new(url).unwrap_err();
        assert!(matches!(e, RpcError::InvalidUrl { .. }), "{url}: {e:?}");
    }
}

#[test]
fn blocking_client() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(start(RpcLimits::default()));
    let url = s.url();
    // The blocking client runs its own runtime, on this (non-async) thread.
    let client = BlockingRpcClient::new(&url).unwrap();
    assert_eq!(client.url(), url);
    assert_eq!(client.status().unwrap(), status_view());
    let tx = transfer(3, 0, 2);
    assert_eq!(client.submit_tx(&tx).unwrap().id, tx.id().to_hex());
    assert_eq!(
        client
            .account(ChainId::MAIN, tx.sender(), AssetId::NATIVE)
            .unwrap()
            .nonce,
        1
    );
    assert_eq!(client.block(Some(0)).unwrap(), block_view(0));
    assert_eq!(client.validators().unwrap(), validators_view());
    rt.block_on(s.shutdown());
}
