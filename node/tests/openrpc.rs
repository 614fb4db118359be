//! The OpenRPC document (`node/openrpc.json`, served by `rpc.discover`) and the server agree:
//! the same methods, each with the same parameter names (the server's own list, read from
//! the error it gives for an unknown parameter), a wrong type refused for every parameter,
//! and the fields of every answer the document describes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod rpc_fake;

use banyan_node::rpc::server::RpcLimits;
use banyan_node::rpc::*;
use rpc_fake::*;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

fn doc() -> Value {
    serde_json::from_str(OPENRPC_JSON).expect("node/openrpc.json is JSON")
}

async fn call(s: &Server, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    rpc(s.addr, &body.to_string()).await
}

/// The parameter names the server accepts for `method`, from its answer to an unknown one.
async fn server_params(s: &Server, method: &str) -> BTreeSet<String> {
    let v = call(s, method, json!({"no_such_parameter": 1})).await;
    assert_eq!(v["error"]["code"], INVALID_PARAMS, "{method}: {v}");
    let message = v["error"]["message"].as_str().expect("a message");
    if message.contains("takes no parameters") {
        return BTreeSet::new();
    }
    let list = message
        .split("this method takes: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{method}: {message}"));
    list.split(", ").map(|p| p.trim().to_string()).collect()
}

/// A value of the wrong JSON type for `schema`.
fn wrong_value(schema: &Value) -> Value {
    match schema["type"].as_str() {
        Some("string") => json!(7),
        Some("array") => json!("not an array"),
        _ => json!("not a number"),
    }
}

/// Resolve a `$ref` into the document's schemas.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().expect("a name");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Check `value` against `schema` (object fields, arrays, the simple types, nullable).
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    if let Some(options) = schema["oneOf"].as_array() {
        if value.is_null() && options.iter().any(|o| o["type"] == "null") {
            return;
        }
        let inner = options
            .iter()
            .find(|o| o["type"] != "null")
            .expect("a non-null option");
        return conforms(doc, inner, value, at);
    }
    match schema["type"].as_str() {
        Some("object") => {
            let obj = value
                .as_object()
                .unwrap_or_else(|| panic!("{at}: {value} is not an object"));
            if let Some(props) = schema["properties"].as_object() {
                let documented: BTreeSet<&String> = props.keys().collect();
                let answered: BTreeSet<&String> = obj.keys().collect();
                assert_eq!(documented, answered, "{at}: documented vs answered fields");
                for (k, v) in obj {
                    conforms(doc, &props[k], v, &format!("{at}.{k}"));
                }
            }
        }
        Some("array") => {
            for (i, v) in value
                .as_array()
                .unwrap_or_else(|| panic!("{at}: {value} is not an array"))
                .iter()
                .enumerate()
            {
                conforms(doc, &schema["items"], v, &format!("{at}[{i}]"));
            }
        }
        Some("string") => assert!(value.is_string(), "{at}: {value} is not a string"),
        Some("integer") => assert!(value.is_u64(), "{at}: {value} is not an integer"),
        Some("boolean") => assert!(value.is_boolean(), "{at}: {value} is not a boolean"),
        Some("null") => assert!(value.is_null(), "{at}: {value} is not null"),
        other => panic!("{at}: schema type {other:?} not handled"),
    }
}

#[tokio::test]
async fn the_openrpc_document_matches_the_server() {
    let s = start(RpcLimits::default()).await;
    let doc = doc();
    assert_eq!(doc["openrpc"], "1.2.6");
    let methods = doc["methods"].as_array().expect("methods");

    // The same methods, both ways.
    let documented: BTreeSet<&str> = methods
        .iter()
        .map(|m| m["name"].as_str().expect("a name"))
        .collect();
    let served: BTreeSet<&str> = METHODS.iter().copied().collect();
    assert_eq!(documented, served);

    // `rpc.discover` answers the document itself.
    let v = call(&s, RPC_DISCOVER, json!([])).await;
    assert_eq!(v["result"], doc);

    for m in methods {
        let name = m["name"].as_str().unwrap();
        let params = m["params"].as_array().expect("params");
        let names: BTreeSet<String> = params
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, server_params(&s, name).await, "parameters of {name}");

        // The example's values, then each parameter in turn given the wrong type.
        let mut example = Map::new();
        for p in m["examples"][0]["params"].as_array().expect("an example") {
            example.insert(p["name"].as_str().unwrap().to_string(), p["value"].clone());
        }
        for p in params {
            let pname = p["name"].as_str().unwrap();
            let mut args = example.clone();
            args.insert(pname.to_string(), wrong_value(&p["schema"]));
            let v = call(&s, name, Value::Object(args)).await;
            assert_eq!(v["error"]["code"], INVALID_PARAMS, "{name}({pname}): {v}");
            let message = v["error"]["message"].as_str().unwrap();
            assert!(message.contains(pname), "{name}({pname}): {message}");
        }
        // A required parameter left out is refused.
        for p in params.iter().filter(|p| p["required"] == true) {
            let pname = p["name"].as_str().unwrap();
            let mut args = example.clone();
            args.remove(pname);
            let v = call(&s, name, Value::Object(args)).await;
            assert_eq!(
                v["error"]["code"], INVALID_PARAMS,
                "{name} without {pname}: {v}"
            );
        }

        // Where the in-memory node answers, the answer has the documented shape.
        let v = call(&s, name, Value::Object(example)).await;
        if !v["result"].is_null() || v.get("error").is_none() {
            conforms(&doc, &m["result"]["schema"], &v["result"], name);
        }
    }
}
