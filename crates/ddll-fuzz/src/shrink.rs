//! Shrinking a failing sequence, delta-debugging style: one try with every element at its
//! simplest, then fewer elements (chunks of halving size are removed while the failure
//! stays), then simpler elements (each replaced by the first of its simpler variants that
//! still fails), repeated until nothing changes.

/// The smallest sequence found from `items` for which `fails` holds (`fails(items)` must
/// hold). `simpler` lists an element's simpler variants, simplest first. `budget` caps the
/// number of `fails` calls (each may run a driver).
pub fn shrink<T: Clone>(
    items: Vec<T>,
    simpler: impl Fn(&T) -> Vec<T>,
    mut fails: impl FnMut(&[T]) -> bool,
    budget: usize,
) -> Vec<T> {
    let mut tries = 0usize;
    let mut check = |candidate: &[T]| {
        tries += 1;
        tries <= budget && fails(candidate)
    };
    let mut current = items;
    loop {
        let mut changed = all_simplest(&mut current, &simpler, &mut check);
        changed |= remove_chunks(&mut current, &mut check);
        // Once more with fewer elements: what stopped it may be gone.
        changed |= all_simplest(&mut current, &simpler, &mut check);
        changed |= simplify_each(&mut current, &simpler, &mut check);
        if !changed {
            return current;
        }
    }
}

/// Every element at its simplest at once: when that still fails, one run saves the many of
/// simplifying them one by one (each run may cost seconds, under memcheck).
fn all_simplest<T: Clone>(
    current: &mut Vec<T>,
    simpler: &impl Fn(&T) -> Vec<T>,
    check: &mut impl FnMut(&[T]) -> bool,
) -> bool {
    let mut any = false;
    let simplest: Vec<T> = current
        .iter()
        .map(|x| match simpler(x).into_iter().next() {
            Some(s) => {
                any = true;
                s
            }
            None => x.clone(),
        })
        .collect();
    if any && check(&simplest) {
        *current = simplest;
        true
    } else {
        false
    }
}

/// ddmin's removal: chunks of `len / 2`, then smaller, down to single elements.
fn remove_chunks<T: Clone>(current: &mut Vec<T>, check: &mut impl FnMut(&[T]) -> bool) -> bool {
    let mut changed = false;
    let mut chunk = (current.len() / 2).max(1);
    loop {
        let mut start = 0;
        while start < current.len() {
            let end = (start + chunk).min(current.len());
            let mut candidate = current[..start].to_vec();
            candidate.extend_from_slice(&current[end..]);
            if check(&candidate) {
                *current = candidate;
                changed = true;
            } else {
                start += chunk;
            }
        }
        if chunk == 1 {
            return changed;
        }
        chunk /= 2;
    }
}

fn simplify_each<T: Clone>(
    current: &mut [T],
    simpler: &impl Fn(&T) -> Vec<T>,
    check: &mut impl FnMut(&[T]) -> bool,
) -> bool {
    let mut changed = false;
    for i in 0..current.len() {
        // Each accepted variant is simplified further, until none of its variants fails.
        'element: loop {
            for variant in simpler(&current[i]) {
                let mut candidate = current.to_vec();
                candidate[i] = variant.clone();
                if check(&candidate) {
                    current[i] = variant;
                    changed = true;
                    continue 'element;
                }
            }
            break;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::shrink;

    /// Simpler numbers: 0, half, one less.
    fn simpler(n: &u32) -> Vec<u32> {
        let mut v = Vec::new();
        if *n > 0 {
            v.extend([0, n / 2, n - 1]);
        }
        v
    }

    /// A synthetic oracle: "crashes" when a value of at least 50 comes before a 3.
    fn fails(items: &[u32]) -> bool {
        items
            .iter()
            .position(|&x| x >= 50)
            .is_some_and(|i| items[i + 1..].contains(&3))
    }

    #[test]
    fn shrinks_to_the_smallest_failing_sequence() {
        let cases: [(&[u32], &[u32]); 4] = [
            (&[9, 7, 200, 1, 1, 4, 3, 8, 3, 99], &[50, 3]),
            (&[3, 50, 3], &[50, 3]),
            (&[1, 2, 3, 1000, 5, 6, 7, 3], &[50, 3]),
            (&[77, 3], &[50, 3]),
        ];
        for (input, expected) in cases {
            assert!(fails(input), "the oracle fails on {input:?}");
            let shrunk = shrink(input.to_vec(), simpler, fails, 10_000);
            assert_eq!(shrunk, expected, "shrinking {input:?}");
        }
    }

    #[test]
    fn every_element_at_its_simplest_is_tried_first() {
        // Fails whenever the sequence is as long as it was: the one try suffices for values.
        let mut calls = 0;
        let shrunk = shrink(
            vec![7u32, 9, 4],
            simpler,
            |items| {
                calls += 1;
                items.len() == 3
            },
            10_000,
        );
        assert_eq!(shrunk, [0, 0, 0]);
        // The one try, then the three one-element removals (which pass), twice (the first
        // round changed something); zero has no simpler variant left to try. One by one, the
        // values would have taken 3 runs each.
        assert_eq!(calls, 1 + 3 + 3, "{calls} oracle calls");
    }

    #[test]
    fn the_budget_bounds_the_oracle_calls_and_keeps_a_failing_sequence() {
        let input: Vec<u32> = (0..40).map(|i| if i == 5 { 60 } else { 3 }).collect();
        let mut calls = 0;
        let shrunk = shrink(
            input,
            simpler,
            |items| {
                calls += 1;
                fails(items)
            },
            10,
        );
        assert!(calls <= 10, "{calls} oracle calls for a budget of 10");
        assert!(fails(&shrunk), "the result still fails: {shrunk:?}");
    }
}
