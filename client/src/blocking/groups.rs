//! Group membership and group administration on the blocking `Client`:
//! FindCoordinator, JoinGroup (with the KIP-394 member-id round trip),
//! SyncGroup, Heartbeat, LeaveGroup, OffsetCommit/OffsetFetch, ListGroups,
//! DescribeGroups, DeleteGroups; and topic administration (DeleteTopics, DescribeConfigs).
//!
//! Blocking thread only, like the rest of `blocking`.

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;

use super::{Client, ClientError, BROKER_TIMEOUT_MS};
use crate::consumer_protocol::decode_assignment;
use crate::error::check;
use crate::requests::admin;
use crate::requests::groups::{self, Generation, Member, CONSUMER};
use crate::responses;

/// A JoinGroup answer: the generation, this member's id, the leader's id, the
/// chosen protocol, and (for the leader only) every member's id and metadata.
#[derive(Debug, Clone)]
pub struct Joined {
    pub generation_id: i32,
    pub member_id: String,
    pub leader_id: String,
    pub protocol_name: String,
    pub members: Vec<(String, Bytes)>,
}

impl Joined {
    pub fn is_leader(&self) -> bool {
        self.member_id == self.leader_id
    }
}

/// One ListGroups entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
}

/// One DescribeGroups member; `assignment` is decoded for `consumer` groups.
#[derive(Debug, Clone)]
pub struct GroupMember {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub assignment: Vec<(String, Vec<i32>)>,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<GroupMember>,
}

/// (topic, partition, committed offset) as OffsetFetch reports it; -1 means none.
pub type CommittedOffset = (String, i32, i64);

impl Client {
    /// FindCoordinator for a group: (node id, host, port).
    pub fn find_coordinator(&mut self, group_id: &str) -> Result<(i32, String, i32), ClientError> {
        let r = self.call(groups::find_coordinator(group_id))?;
        check(ApiKey::FindCoordinator, r.error_code)?;
        Ok((r.node_id.0, r.host.to_string(), r.port))
    }

    /// JoinGroup as a `consumer` member offering `protocols` (name, metadata).
    /// An empty `member_id` joins as new; MEMBER_ID_REQUIRED is answered by
    /// joining again with the id the broker handed out (KIP-394), so the
    /// caller always gets a member id back.
    pub fn join_group(
        &mut self,
        group_id: &str,
        member_id: &str,
        session_timeout_ms: i32,
        protocols: &[(&str, Bytes)],
    ) -> Result<Joined, ClientError> {
        let required = ResponseError::MemberIdRequired.code();
        let mut member_id = member_id.to_string();
        // A broker that hands out a member id answers the second join.
        for _round in 0..2 {
            let member = Member {
                group_id,
                member_id: &member_id,
                session_timeout_ms,
            };
            let r = self.call(groups::join_group(member, protocols))?;
            if r.error_code == required {
                member_id = r.member_id.to_string();
                continue;
            }
            check(ApiKey::JoinGroup, r.error_code)?;
            return Ok(Joined {
                generation_id: r.generation_id,
                member_id: r.member_id.to_string(),
                leader_id: r.leader.to_string(),
                protocol_name: r.protocol_name.map(|p| p.to_string()).unwrap_or_default(),
                members: r
                    .members
                    .into_iter()
                    .map(|m| (m.member_id.to_string(), m.metadata))
                    .collect(),
            });
        }
        Err(crate::error::ProtocolError::broker(ApiKey::JoinGroup, required, "").into())
    }

    /// SyncGroup: the leader passes every member's assignment, the others an
    /// empty list. Returns this member's assignment bytes.
    pub fn sync_group(
        &mut self,
        group_id: &str,
        joined: &Joined,
        assignments: &[(String, Bytes)],
    ) -> Result<Bytes, ClientError> {
        let at = Generation {
            group_id,
            generation_id: joined.generation_id,
            member_id: &joined.member_id,
        };
        let r = self.call(groups::sync_group(at, &joined.protocol_name, assignments))?;
        check(ApiKey::SyncGroup, r.error_code)?;
        Ok(r.assignment)
    }

    /// Heartbeat; REBALANCE_IN_PROGRESS comes back as `ClientError::Kafka { code: 27, .. }`.
    pub fn heartbeat(
        &mut self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
    ) -> Result<(), ClientError> {
        let at = Generation {
            group_id,
            generation_id,
            member_id,
        };
        let r = self.call(groups::heartbeat(at))?;
        Ok(check(ApiKey::Heartbeat, r.error_code)?)
    }

    pub fn leave_group(&mut self, group_id: &str, member_id: &str) -> Result<(), ClientError> {
        let version = self.version(ApiKey::LeaveGroup)?;
        let r = self.call_at(version, groups::leave_group(group_id, member_id, version))?;
        check(ApiKey::LeaveGroup, r.error_code)?;
        for m in &r.members {
            check(ApiKey::LeaveGroup, m.error_code)?;
        }
        Ok(())
    }

    /// OffsetCommit of (topic, partition, offset) triples. Generation -1 with
    /// an empty member id is an admin commit, which the coordinator accepts
    /// only for a group without members.
    pub fn commit_offsets(
        &mut self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<(), ClientError> {
        let at = Generation {
            group_id,
            generation_id,
            member_id,
        };
        let r = self.call(groups::offset_commit(at, offsets))?;
        for p in r.topics.iter().flat_map(|t| &t.partitions) {
            check(ApiKey::OffsetCommit, p.error_code)?;
        }
        Ok(())
    }

    /// OffsetFetch for one group: every committed partition (`topics: None`) or the named ones.
    pub fn fetch_offsets(
        &mut self,
        group_id: &str,
        topics: Option<&[(&str, Vec<i32>)]>,
    ) -> Result<Vec<CommittedOffset>, ClientError> {
        let r = self.call(groups::offset_fetch(group_id, topics))?;
        check(ApiKey::OffsetFetch, r.error_code)?;
        let mut out = Vec::new();
        for t in r.topics {
            for p in t.partitions {
                check(ApiKey::OffsetFetch, p.error_code)?;
                out.push((t.name.0.to_string(), p.partition_index, p.committed_offset));
            }
        }
        Ok(out)
    }

    pub fn list_groups(&mut self) -> Result<Vec<GroupListing>, ClientError> {
        let r = self.call(admin::list_groups())?;
        check(ApiKey::ListGroups, r.error_code)?;
        Ok(r.groups
            .into_iter()
            .map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            })
            .collect())
    }

    /// DescribeGroups for one group. An unknown group is reported with state `Dead`.
    pub fn describe_group(&mut self, group_id: &str) -> Result<GroupDescription, ClientError> {
        let g = responses::described_group(self.call(admin::describe_group(group_id))?)?;
        check(ApiKey::DescribeGroups, g.error_code)?;
        let consumer = g.protocol_type.as_str() == CONSUMER;
        let members = g
            .members
            .into_iter()
            .map(|m| GroupMember {
                member_id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: if consumer {
                    decode_assignment(&m.member_assignment).unwrap_or_default()
                } else {
                    Vec::new()
                },
            })
            .collect();
        Ok(GroupDescription {
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members,
        })
    }

    /// DeleteGroups for one group: its metadata and committed offsets go.
    /// GROUP_ID_NOT_FOUND and NON_EMPTY_GROUP come back as `ClientError::Kafka`.
    pub fn delete_group(&mut self, group_id: &str) -> Result<(), ClientError> {
        let r = self.call(admin::delete_group(group_id))?;
        for g in &r.results {
            check(ApiKey::DeleteGroups, g.error_code)?;
        }
        Ok(())
    }

    pub fn delete_topic(&mut self, name: &str) -> Result<(), ClientError> {
        let version = self.version(ApiKey::DeleteTopics)?;
        let r = self.call_at(version, admin::delete_topic(name, version, BROKER_TIMEOUT_MS))?;
        for t in &r.responses {
            check(ApiKey::DeleteTopics, t.error_code)?;
        }
        Ok(())
    }

    /// CreatePartitions: grow `name` to `count` partitions.
    pub fn create_partitions(&mut self, name: &str, count: i32) -> Result<(), ClientError> {
        let r = self.call(admin::create_partitions(name, count, BROKER_TIMEOUT_MS))?;
        for t in &r.results {
            check(ApiKey::CreatePartitions, t.error_code)?;
        }
        Ok(())
    }

    /// DeleteRecords for one partition; the new log start offset.
    pub fn delete_records(&mut self, name: &str, partition: i32, offset: i64) -> Result<i64, ClientError> {
        let r = self.call(admin::delete_records(name, partition, offset, BROKER_TIMEOUT_MS))?;
        let mut low = -1;
        for p in r.topics.iter().flat_map(|t| &t.partitions) {
            check(ApiKey::DeleteRecords, p.error_code)?;
            low = p.low_watermark;
        }
        Ok(low)
    }

    /// IncrementalAlterConfigs for one topic.
    pub fn alter_topic_configs(
        &mut self,
        name: &str,
        set: &[(&str, &str)],
        delete: &[&str],
    ) -> Result<(), ClientError> {
        let r = self.call(admin::alter_topic_configs(name, set, delete))?;
        for res in &r.responses {
            check(ApiKey::IncrementalAlterConfigs, res.error_code)?;
        }
        Ok(())
    }

    /// DescribeConfigs for one topic: (name, value) pairs.
    pub fn topic_configs(&mut self, name: &str) -> Result<Vec<(String, String)>, ClientError> {
        let r = self.call(admin::topic_configs(name))?;
        let mut out = Vec::new();
        for res in r.results {
            check(ApiKey::DescribeConfigs, res.error_code)?;
            for c in res.configs {
                out.push((
                    c.name.to_string(),
                    c.value.map(|v| v.to_string()).unwrap_or_default(),
                ));
            }
        }
        Ok(out)
    }
}
