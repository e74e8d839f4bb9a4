//! DescribeCluster: the cluster id, the controller and the brokers exactly as
//! Metadata advertises them (one per shard in zero-hop mode, one in
//! single-address mode), from the catalog of the accepting shard. Weir has no
//! ACLs and no fenced brokers: authorized operations, when asked, are every
//! cluster operation (as Metadata's), and the fenced flag is always false.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::ResponseError;

use super::metadata::{advertised_nodes, CLUSTER_AUTHORIZED_OPERATIONS, CONTROLLER_ID};
use super::ShardContext;

/// KIP-919 endpoint types: a broker serves the broker type only.
const ENDPOINT_BROKERS: i8 = 1;
const ENDPOINT_CONTROLLERS: i8 = 2;

pub fn handle(shard: &ShardContext, req: &DescribeClusterRequest, tls: bool) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default().with_endpoint_type(req.endpoint_type);
    // As Kafka's brokers: a controller request is the wrong endpoint, an unknown type unsupported.
    let refused = match req.endpoint_type {
        ENDPOINT_BROKERS => None,
        ENDPOINT_CONTROLLERS => Some(ResponseError::MismatchedEndpointType),
        _ => Some(ResponseError::UnsupportedEndpointType),
    };
    if let Some(e) = refused {
        let message = format!("endpoint type {} is not served here", req.endpoint_type);
        return response
            .with_error_code(e.code())
            .with_error_message(Some(message.into()));
    }
    let brokers = advertised_nodes(shard, tls)
        .into_iter()
        .map(|(id, host, port)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(id))
                .with_host(host.into())
                .with_port(port)
        })
        .collect();
    let response = response
        .with_cluster_id(shard.catalog().cluster_id.clone().into())
        .with_controller_id(BrokerId(CONTROLLER_ID))
        .with_brokers(brokers);
    if req.include_cluster_authorized_operations {
        response.with_cluster_authorized_operations(CLUSTER_AUTHORIZED_OPERATIONS)
    } else {
        response
    }
}
