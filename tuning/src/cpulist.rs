//! The kernel's CPU list format (`0-3,8,10-11`), as found in
//! `/sys/devices/system/cpu/online`, `/proc/irq/*/smp_affinity_list` and
//! `isolcpus=`: parsing into sorted CPU ids and formatting back.
//!
//! Parsing is strict (a malformed list is an error the caller reports, never
//! a panic) and bounded: ids above [`CPU_ID_MAX`] are refused, so a corrupt
//! `0-4294967295` cannot make us allocate gigabytes.

/// Largest CPU id accepted (Linux's `NR_CPUS` tops out at 8192).
pub const CPU_ID_MAX: usize = 65_535;

/// Parses `0-3,8,10-11` (also `0-7:2` strides and an empty list) into sorted,
/// deduplicated CPU ids.
pub fn parse_cpulist(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    let text = text.trim();
    if text.is_empty() || text == "(null)" {
        return Ok(cpus);
    }
    for part in text.split(',') {
        let part = part.trim();
        let (range, stride) = match part.split_once(':') {
            Some((range, stride)) => {
                // `0-31:4/8` (use 4 of every 8) is rare; only plain strides are accepted.
                let stride: usize = stride
                    .parse()
                    .map_err(|_| format!("bad stride '{stride}' in cpu list '{text}'"))?;
                if stride == 0 {
                    return Err(format!("zero stride in cpu list '{text}'"));
                }
                (range, stride)
            }
            None => (part, 1),
        };
        let (first, last) = match range.split_once('-') {
            Some((first, last)) => (parse_cpu_id(first, text)?, parse_cpu_id(last, text)?),
            None => {
                let cpu = parse_cpu_id(range, text)?;
                (cpu, cpu)
            }
        };
        if first > last {
            return Err(format!("descending range '{range}' in cpu list '{text}'"));
        }
        cpus.extend((first..=last).step_by(stride));
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

fn parse_cpu_id(text: &str, list: &str) -> Result<usize, String> {
    let cpu: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("bad cpu id '{text}' in cpu list '{list}'"))?;
    if cpu > CPU_ID_MAX {
        return Err(format!("cpu id {cpu} above {CPU_ID_MAX} in cpu list '{list}'"));
    }
    Ok(cpu)
}

/// Formats CPU ids as the kernel does: `0-3,8,10-11` (input need not be sorted).
pub fn format_cpulist(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut index = 0;
    while index < sorted.len() {
        let first = sorted[index];
        let mut last = first;
        while index + 1 < sorted.len() && sorted[index + 1] == last + 1 {
            index += 1;
            last = sorted[index];
        }
        parts.push(if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        });
        index += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_singles_and_strides_parse_sorted_and_deduplicated() {
        assert_eq!(
            parse_cpulist("0-3,8,10-11\n").unwrap(),
            vec![0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(parse_cpulist("5,1,1").unwrap(), vec![1, 5]);
        assert_eq!(parse_cpulist("0-7:2").unwrap(), vec![0, 2, 4, 6]);
        assert_eq!(parse_cpulist("").unwrap(), Vec::<usize>::new());
        assert_eq!(parse_cpulist(" 3 ").unwrap(), vec![3]);
    }

    #[test]
    fn malformed_or_huge_lists_are_errors_not_panics() {
        assert!(parse_cpulist("a-b").is_err());
        assert!(parse_cpulist("3-1").is_err());
        assert!(parse_cpulist("0-4294967295").is_err());
        assert!(parse_cpulist("1,,2").is_err());
        assert!(parse_cpulist("0-3:0").is_err());
        assert!(parse_cpulist("-1").is_err());
    }

    #[test]
    fn formatting_collapses_runs_and_round_trips() {
        assert_eq!(format_cpulist(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(format_cpulist(&[4, 2]), "2,4");
        assert_eq!(format_cpulist(&[]), "");
        let list = "0-5,7,9-63";
        assert_eq!(format_cpulist(&parse_cpulist(list).unwrap()), list);
    }
}
