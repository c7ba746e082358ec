// Licensed to the Apache Software Foundation (ASF) under one
// or more contributor license agreements.  See the NOTICE file
// distributed with this work for additional information
// regarding copyright ownership.  The ASF licenses this file
// to you under the Apache License, Version 2.0 (the
// "License"); you may not use this file except in compliance
// with the License.  You may obtain a copy of the License at
//
//   http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing,
// software distributed under the License is distributed on an
// "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
// KIND, either express or implied.  See the License for the
// specific language governing permissions and limitations
// under the License.

//! CPU time the nodes under load spend, read from `/proc/<pid>/stat`, so a
//! run can say what one order costs each node: the figure the throughput
//! target is about, steadier than orders/s on a machine whose speed varies.

use std::time::Duration;

/// Ticks of `/proc/<pid>/stat`'s utime and stime: Linux reports them in
/// USER_HZ, which is 100 on every architecture it exposes to user space.
const TICKS_PER_SECOND: u64 = 100;

/// A node process to watch, from `--node-pid NAME=PID`.
#[derive(Clone, Debug)]
pub struct Watched {
    pub name: String,
    pub pid: u32,
}

impl std::str::FromStr for Watched {
    type Err = String;
    fn from_str(s: &str) -> Result<Watched, String> {
        let (name, pid) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected NAME=PID"))?;
        let pid = pid
            .parse()
            .map_err(|_| format!("{s:?}: {pid:?} is not a process ID"))?;
        Ok(Watched {
            name: name.to_string(),
            pid,
        })
    }
}

/// User plus system CPU time of a process and all its threads, dead ones
/// included; None if it cannot be read (no such process, not Linux).
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from its ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SECOND,
    ))
}

/// The watched nodes' CPU times at one moment.
pub struct Snapshot(Vec<Option<Duration>>);

pub fn snapshot(nodes: &[Watched]) -> Snapshot {
    Snapshot(nodes.iter().map(|n| process_cpu(n.pid)).collect())
}

/// Prints each node's CPU time per operation between two snapshots, their
/// sum, and the sum as a multiple of `floor_cpu` when given.
pub fn print_per_operation(
    label: &str,
    nodes: &[Watched],
    from: &Snapshot,
    to: &Snapshot,
    operations: usize,
    floor_cpu: Option<Duration>,
) {
    if nodes.is_empty() || operations == 0 {
        return;
    }
    let mut parts = Vec::new();
    let mut total = Duration::ZERO;
    for ((node, a), b) in nodes.iter().zip(&from.0).zip(&to.0) {
        match (a, b) {
            (Some(a), Some(b)) => {
                let each = b.saturating_sub(*a) / operations as u32;
                total += each;
                parts.push(format!("{} {:.2} ms", node.name, each.as_secs_f64() * 1e3));
            }
            _ => parts.push(format!("{} ?", node.name)),
        }
    }
    let ratio = floor_cpu
        .filter(|f| !f.is_zero())
        .map(|f| {
            format!(
                " = {:.1} × the floor's CPU",
                total.as_secs_f64() / f.as_secs_f64()
            )
        })
        .unwrap_or_default();
    println!(
        "{label} {}; all nodes {:.2} ms{ratio}",
        parts.join(", "),
        total.as_secs_f64() * 1e3
    );
}
