//! What `TcpInfoLayer` adds to one request, without a network in the way: a hello-world
//! tower service called with and without the layer on a real tracked loopback
//! connection, each iteration a full request (call, response, body to its end, the
//! stream's flush that ends the request). The difference is the layer's cost per
//! measured request (the first two layered cases measure every request), and per
//! unmeasured one (the default cap on a busy connection); `benches/http_load.sh`
//! measures the same under `wrk`.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use conniver::{Connection, TcpInfoLayer, TcpInfoListener, TrackedStream};
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use tokio::io::AsyncWriteExt;
use tower::{Service, ServiceExt};

async fn hello(_req: Request<()>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::from("Hello, World!")))
}

/// One request through `svc` on `conn`, then the flush hyper would do.
async fn one<S, B>(svc: &mut S, conn: &Connection, stream: &mut TrackedStream)
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let mut req = Request::new(());
    req.extensions_mut().insert(conn.clone());
    let response = svc.ready().await.unwrap().call(req).await.unwrap();
    let body = response.into_body().collect().await.unwrap();
    black_box(body);
    stream.flush().await.unwrap();
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut stream, _client, conn) = rt.block_on(async {
        let listener = TcpInfoListener::builder()
            .tick(None)
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let conn = stream.connection().clone();
        (stream, client, conn)
    });

    let mut group = c.benchmark_group("request");
    group.measurement_time(Duration::from_secs(3));
    let mut plain = tower::service_fn(hello);
    group.bench_function("plain", |b| {
        b.iter(|| rt.block_on(one(&mut plain, &conn, &mut stream)))
    });
    let mut bare = tower::ServiceBuilder::new()
        .layer(
            TcpInfoLayer::new()
                .measure_every_request()
                .without_default_observers(),
        )
        .service_fn(hello);
    group.bench_function("layer_without_observers", |b| {
        b.iter(|| rt.block_on(one(&mut bare, &conn, &mut stream)))
    });
    let mut full = tower::ServiceBuilder::new()
        .layer(TcpInfoLayer::new().measure_every_request())
        .service_fn(hello);
    group.bench_function("layer_with_default_observers", |b| {
        b.iter(|| rt.block_on(one(&mut full, &conn, &mut stream)))
    });
    // The default configuration on a connection far busier than its cap of measured
    // requests per second: almost every request is served unmeasured, so this is
    // the cost of the layer's decision not to measure.
    let mut capped = tower::ServiceBuilder::new()
        .layer(TcpInfoLayer::new())
        .service_fn(hello);
    group.bench_function("layer_default_on_a_busy_connection", |b| {
        b.iter(|| rt.block_on(one(&mut capped, &conn, &mut stream)))
    });
    group.finish();

    // The same through an axum `Router`, where a layer has costs of its own: axum
    // clones the layered route per request and boxes the wrapped response body.
    // `TraceLayer` (tower-http, no subscriber) is a reference for any layer that wraps
    // the body.
    let mut group = c.benchmark_group("axum");
    group.measurement_time(Duration::from_secs(3));
    let app = || axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
    let routers = [
        ("plain", app()),
        (
            "trace_layer",
            app().layer(tower_http::trace::TraceLayer::new_for_http()),
        ),
        (
            "layer_default_on_a_busy_connection",
            app().layer(TcpInfoLayer::new()),
        ),
        (
            "layer_measuring_every_request",
            app().layer(TcpInfoLayer::new().measure_every_request()),
        ),
    ];
    for (name, mut router) in routers {
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(one_axum(&mut router, &conn, &mut stream)))
        });
    }
    group.finish();
}

/// One request through an axum `Router` the way `axum::serve` with
/// `into_make_service_with_connect_info::<Connection>()` hands it over.
async fn one_axum(router: &mut axum::Router, conn: &Connection, stream: &mut TrackedStream) {
    let mut req = Request::get("/").body(axum::body::Body::empty()).unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(conn.clone()));
    let response = router.call(req).await.unwrap();
    let body = response.into_body().collect().await.unwrap();
    black_box(body);
    stream.flush().await.unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
