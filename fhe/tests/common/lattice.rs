//! Small lattice / statistics helpers for the "curious client" test: can a client that only sees the
//! top bits of `Σ_j w_j·m_ij mod 2^64` recover the small secret vector `w`? std-only, no unsafe.

fn dot_f(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// f64 QR data of the basis (HLLL-style): `r[k]` is row k of the R factor (entries 0..=k used) and
/// `v[k]` the unit Householder vector that produced it (all zero for a dependent row).
/// Why Householder rather than Gram-based Gram–Schmidt: rounding errors scale with ‖b_k‖ instead of
/// ‖b_k‖², so a tiny ‖b_k*‖ under a 2^42-long b_k is still accurate; the Gram (L²) variant diverged
/// at dimension ~90 with 42-bit entries, this one does not.
struct Qr {
    r: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
}

impl Qr {
    /// Recomputes R-row k from the exact integer row `b` (padded to the working length).
    fn refresh(&mut self, k: usize, b: &[i128]) {
        let x = &mut self.r[k];
        x.fill(0.0);
        for (xi, &e) in x.iter_mut().zip(b) {
            *xi = e as f64;
        }
        for (j, v) in self.v[..k].iter().enumerate() {
            let s = 2.0 * dot_f(&v[j..], &x[j..]);
            for (xi, vi) in x[j..].iter_mut().zip(&v[j..]) {
                *xi -= s * vi;
            }
        }
        let sigma = dot_f(&x[k..], &x[k..]).sqrt();
        let vk = &mut self.v[k];
        vk.fill(0.0);
        if sigma > 0.0 && sigma.is_finite() {
            // Reflect x[k..] onto ±σ·e_k, choosing the sign that avoids cancellation.
            let alpha = if x[k] > 0.0 { -sigma } else { sigma };
            vk[k..].copy_from_slice(&x[k..]);
            vk[k] -= alpha;
            let nv = dot_f(&vk[k..], &vk[k..]).sqrt();
            vk[k..].iter_mut().for_each(|e| *e /= nv);
            x[k] = alpha;
        } else {
            x[k] = 0.0;
        }
        x[k + 1..].fill(0.0);
    }
}

fn max_abs(row: &[i128]) -> f64 {
    row.iter().map(|e| e.unsigned_abs()).max().unwrap_or(0) as f64
}

/// Size-reduces row `k` against rows `0..k`. Repeats with a fresh R-row (Schnorr–Euchner) because a
/// large rounded μ is inexact. Returns false (basis left valid, unreduced) if an entry would exceed 2^120.
fn size_reduce(k: usize, basis: &mut [Vec<i128>], qr: &mut Qr) -> bool {
    for _ in 0..64 {
        qr.refresh(k, &basis[k]);
        let mut changed = false;
        for j in (0..k).rev() {
            let mu = qr.r[k][j] / qr.r[j][j];
            // 0.501 rather than 0.5 avoids ping-ponging on μ ≈ ±½; NaN/inf (zero r_jj) is skipped.
            if !(mu.abs() > 0.501 && mu.is_finite()) {
                continue;
            }
            let x = mu.round();
            let (lo, hi) = basis.split_at_mut(k);
            if x.abs() * max_abs(&lo[j]) + max_abs(&hi[0]) > 2f64.powi(120) {
                return false; // precision blow-up on hostile input: stop rather than wrap
            }
            let q = x as i128;
            for (bk, bj) in hi[0].iter_mut().zip(&lo[j]) {
                *bk -= q * bj;
            }
            let (rlo, rhi) = qr.r.split_at_mut(k);
            for (a, b) in rhi[0][..=j].iter_mut().zip(&rlo[j][..=j]) {
                *a -= x * b;
            }
            changed = true;
        }
        if !changed {
            return true; // R-row is fresh from `refresh`
        }
    }
    qr.refresh(k, &basis[k]);
    true
}

/// Floating-point LLL (Schnorr–Euchner style with f64 Householder QR, HLLL-like), exact i128 basis rows.
/// Reduces `basis` (row vectors) in place with parameter `delta` (e.g. 0.99). Ragged rows are zero-padded.
/// Entries should stay well below 2^100; an iteration cap and an overflow guard guarantee termination.
#[allow(clippy::ptr_arg)] // public signature is fixed by the caller's API (takes &mut Vec)
pub fn lll_reduce(basis: &mut Vec<Vec<i128>>, delta: f64) {
    let n = basis.len();
    if n < 2 {
        return;
    }
    let dim = basis.iter().map(Vec::len).max().unwrap_or(0);
    for row in basis.iter_mut() {
        row.resize(dim, 0);
    }
    let delta = if delta.is_finite() {
        delta.clamp(0.3, 0.999)
    } else {
        0.99
    };
    let len = dim.max(n); // so that r_kk exists even for dependent (n > dim) inputs
    let mut qr = Qr {
        r: vec![vec![0.0; len]; n],
        v: vec![vec![0.0; len]; n],
    };
    qr.refresh(0, &basis[0]);
    // Float noise could in principle make LLL cycle; the cap (far above normal use) prevents a hang.
    let bits = basis
        .iter()
        .flatten()
        .map(|x| 128 - x.unsigned_abs().leading_zeros() as usize)
        .max()
        .unwrap_or(0);
    let mut budget = 50 * n * n * (bits + 2) + 10_000;
    let mut k = 1;
    while k < n && budget > 0 {
        budget -= 1;
        if !size_reduce(k, basis, &mut qr) {
            return;
        }
        // Lovász: ‖b_k*‖² + μ²‖b_{k-1}*‖² ≥ δ‖b_{k-1}*‖², written with R entries (no division).
        let (rk, rp) = (&qr.r[k], &qr.r[k - 1]);
        if rk[k] * rk[k] + rk[k - 1] * rk[k - 1] >= delta * rp[k - 1] * rp[k - 1] {
            k += 1;
        } else {
            basis.swap(k, k - 1);
            if k == 1 {
                qr.refresh(0, &basis[0]); // row 0 is never revisited by size_reduce
            } else {
                k -= 1;
            }
        }
    }
}

/// True iff `w` reproduces every row: |centred(Σ w_j m_ij − wire_i·2^shift mod 2^64)| ≤ 2^(shift−1).
fn certifies(m: &[Vec<u64>], wire: &[u64], shift: u32, w: &[i64]) -> bool {
    let half = 1u64 << (shift - 1);
    m.iter().zip(wire).all(|(row, &c)| {
        let acc = row.iter().zip(w).fold(0u64, |s, (&x, &wj)| {
            s.wrapping_add(x.wrapping_mul(wj as u64))
        });
        (acc.wrapping_sub(c.wrapping_shl(shift)) as i64).unsigned_abs() <= half
    })
}

/// Kannan-embedding attack. Uses the first `rows` equations (clamped to 1..=m.len()), rescaled by 2^t with
/// t = max(shift, 24) to ≤ 40-bit numbers mod Q = 2^(64−t), so every basis entry is exact in f64.
/// Returns Some(w) ONLY if |w_j| ≤ wmax and w reproduces EVERY given row (see `certifies`), else None.
/// Never panics; malformed input (ragged/empty `m`, `wire.len() != m.len()`, shift ∉ 1..64) gives None.
pub fn recover_small_secret(
    m: &[Vec<u64>],
    wire: &[u64],
    shift: u32,
    wmax: i64,
    rows: usize,
) -> Option<Vec<i64>> {
    let d = m.first()?.len();
    if d == 0
        || wire.len() != m.len()
        || m.iter().any(|r| r.len() != d)
        || !(1..64).contains(&shift)
        || wmax < 0
    {
        return None;
    }
    let n = rows.clamp(1, m.len());
    // Scaled equation: Σ_j w_j·M_ij − c_i ≡ err_i (mod Q), M = round(m/2^t), c = round(wire·2^shift/2^t),
    // |err_i| ≤ 1 + ½Σ|w_j| (dropped low bits of m contribute ½|w_j| each, rounding of the output ≤ 1).
    let t = shift.max(24);
    let q: i128 = 1 << (64 - t);
    let scale = |x: u64| {
        let v = ((u128::from(x) + (1u128 << (t - 1))) >> t) as i128 % q;
        // Centred representative: halves the entries, same lattice.
        if v >= q / 2 {
            v - q
        } else {
            v
        }
    };
    // Balance: w_j ~ U[−wmax, wmax] has σ_w = wmax/√3; err_i is ~ a sum of d terms w_j·U[−½,½] plus
    // output rounding, σ_e ≈ sqrt((d σ_w² + 1)/12). Weight the coordinates so both look alike (×E for
    // integer resolution); K ≈ one coordinate's typical size, the usual Kannan choice.
    const E: i128 = 4;
    let sigma_w = (wmax.max(1) as f64) / 3f64.sqrt();
    let sigma_e = ((d as f64 * sigma_w * sigma_w + 1.0) / 12.0).sqrt();
    let wgt = ((E as f64) * sigma_e / sigma_w).round().clamp(1.0, 1e6) as i128;
    let kemb = ((wgt as f64) * sigma_w).round().clamp(1.0, 1e9) as i128;
    // Columns: [w (d) | err (n) | embedding (1)]. Rows: q-ary rows, secret rows, embedding row.
    let dim = d + n + 1;
    let mut basis = vec![vec![0i128; dim]; dim];
    for (i, row) in basis[..n].iter_mut().enumerate() {
        row[d + i] = E * q;
    }
    for (j, row) in basis[n..n + d].iter_mut().enumerate() {
        row[j] = wgt;
        for (i, mi) in m[..n].iter().enumerate() {
            row[d + i] = E * scale(mi[j]);
        }
    }
    for (i, &c) in wire[..n].iter().enumerate() {
        basis[dim - 1][d + i] = -E * scale(c.wrapping_shl(shift));
    }
    basis[dim - 1][dim - 1] = kemb;
    // Progressive δ: cheap coarse passes first make the whole reduction ~3× faster than δ = 0.99 alone
    // (measured at d = 30, rows = 16: 0.055 s vs 0.16 s with -O), which matters in debug builds.
    for delta in [0.5, 0.75, 0.99] {
        lll_reduce(&mut basis, delta);
    }
    // The target (wgt·w, E·err, ±K) should now be (close to) the first row; scan them all anyway.
    basis
        .iter()
        .filter(|b| b[dim - 1].abs() == kemb)
        .find_map(|b| {
            let sign = b[dim - 1].signum();
            let w: Option<Vec<i64>> = b[..d]
                .iter()
                .map(|&x| {
                    let v = sign * x;
                    (v % wgt == 0 && (v / wgt).abs() <= i128::from(wmax)).then(|| (v / wgt) as i64)
                })
                .collect();
            w.filter(|w| certifies(m, wire, shift, w))
        })
}

/// Pearson correlation of two equal-length vectors (0.0 if either has zero variance; extra tail ignored).
pub fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 0.0;
    }
    let (a, b) = (&a[..n], &b[..n]);
    let (ma, mb) = (
        a.iter().sum::<f64>() / n as f64,
        b.iter().sum::<f64>() / n as f64,
    );
    let cov = |u: &[f64], mu: f64, v: &[f64], mv: f64| {
        u.iter()
            .zip(v)
            .map(|(x, y)| (x - mu) * (y - mv))
            .sum::<f64>()
    };
    let (saa, sbb) = (cov(a, ma, a, ma), cov(b, mb, b, mb));
    if saa <= 0.0 || sbb <= 0.0 {
        return 0.0;
    }
    cov(a, ma, b, mb) / (saa * sbb).sqrt()
}

/// Least squares with a tiny ridge term: argmin_x ‖A x − y‖² + lambda‖x‖², A given as rows (n × d), via
/// normal equations (AᵀA + λI) x = Aᵀy and Gaussian elimination with partial pivoting in f64.
/// Works for n < d when lambda > 0; with lambda = 0 a singular system yields 0 for undetermined components.
pub fn ridge_least_squares(a: &[Vec<f64>], y: &[f64], lambda: f64) -> Vec<f64> {
    let d = a.iter().map(Vec::len).max().unwrap_or(0);
    // Augmented normal-equation matrix [AᵀA + λI | Aᵀy].
    let mut mat = vec![vec![0.0f64; d + 1]; d];
    for (row, &yi) in a.iter().zip(y) {
        for (i, &ri) in row.iter().enumerate() {
            for (cell, &rj) in mat[i].iter_mut().zip(row) {
                *cell += ri * rj;
            }
            mat[i][d] += ri * yi;
        }
    }
    for (i, r) in mat.iter_mut().enumerate() {
        r[i] += lambda;
    }
    // With lambda > 0 the system is SPD, so every nonzero pivot is genuine; with lambda = 0 a singular
    // AᵀA leaves ~1e-16-relative junk pivots, hence a relative tolerance there.
    let maxdiag = mat
        .iter()
        .enumerate()
        .map(|(i, r)| r[i].abs())
        .fold(0.0, f64::max);
    let tol = if lambda > 0.0 { 0.0 } else { 1e-13 * maxdiag };
    // Row echelon form; a column without a usable pivot is a free variable (left 0) and does not
    // consume a row, so later pivots stay aligned.
    let mut pivots = Vec::with_capacity(d); // (row, col)
    for col in 0..d {
        let row = pivots.len();
        let piv = (row..d)
            .max_by(|&x, &z| mat[x][col].abs().total_cmp(&mat[z][col].abs()))
            .unwrap_or(row);
        let p = mat[piv][col];
        if p.abs() <= tol || !p.is_finite() {
            continue;
        }
        mat.swap(row, piv);
        let (top, rest) = mat.split_at_mut(row + 1);
        let prow = &top[row];
        for r in rest.iter_mut() {
            let f = r[col] / p;
            for (c, &pc) in r[col..].iter_mut().zip(&prow[col..]) {
                *c -= f * pc;
            }
        }
        pivots.push((row, col));
    }
    let mut x = vec![0.0f64; d];
    for &(row, col) in pivots.iter().rev() {
        let r = &mat[row];
        let s: f64 = r[col + 1..d]
            .iter()
            .zip(&x[col + 1..])
            .map(|(c, xv)| c * xv)
            .sum();
        x[col] = (r[d] - s) / r[col];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64: tiny deterministic PRNG so the tests need no crates and are reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let z = (self.0 ^ (self.0 >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn secret(&mut self) -> Vec<i64> {
            (0..D).map(|_| (self.next() % 255) as i64 - 127).collect()
        }
        fn matrix(&mut self) -> Vec<Vec<u64>> {
            (0..2048)
                .map(|_| (0..D).map(|_| self.next()).collect())
                .collect()
        }
    }

    const D: usize = 30;
    const SHIFT: u32 = 24;
    // Empirically 9 rows suffice for uniform w, 10–11 for all-±127 w (0 failures in 1000 seeds at 11 and 12).
    const ROWS: usize = 12;

    /// wire_i = ((Σ_j w_j m_ij + mask_i) + 2^(shift−1)) >> shift, all mod 2^64.
    fn wire_of(m: &[Vec<u64>], w: &[i64], mask: &[u64]) -> Vec<u64> {
        let sum = |r: &[u64], p: u64| {
            r.iter()
                .zip(w)
                .fold(p, |a, (&x, &wj)| a.wrapping_add(x.wrapping_mul(wj as u64)))
        };
        m.iter()
            .zip(mask)
            .map(|(r, &p)| sum(r, p).wrapping_add(1 << (SHIFT - 1)) >> SHIFT)
            .collect()
    }

    #[test]
    fn recovers_secret_five_seeds_and_with_zeros() {
        for seed in 1..=6u64 {
            let mut rng = Rng(seed);
            let mut w = rng.secret();
            if seed == 6 {
                w.iter_mut().step_by(3).for_each(|x| *x = 0); // several zeros, plus both extremes
                (w[1], w[2]) = (127, -127);
            }
            let m = rng.matrix();
            let wire = wire_of(&m, &w, &[0; 2048]);
            assert_eq!(
                recover_small_secret(&m, &wire, SHIFT, 127, ROWS),
                Some(w),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn unrelated_outputs_give_none() {
        let mut rng = Rng(9);
        let (w, m) = (rng.secret(), rng.matrix());
        let random: Vec<u64> = (0..2048).map(|_| rng.next() >> SHIFT).collect();
        assert_eq!(recover_small_secret(&m, &random, SHIFT, 127, ROWS), None);
        // Output masked by a uniform p_i the attacker does not know.
        let mask: Vec<u64> = (0..2048).map(|_| rng.next()).collect();
        assert_eq!(
            recover_small_secret(&m, &wire_of(&m, &w, &mask), SHIFT, 127, ROWS),
            None
        );
        // Attacker is handed an independent matrix instead of the real one.
        let wire = wire_of(&m, &w, &[0; 2048]);
        assert_eq!(
            recover_small_secret(&rng.matrix(), &wire, SHIFT, 127, ROWS),
            None
        );
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let mut rng = Rng(11);
        let m: Vec<Vec<u64>> = rng.matrix()[..5].to_vec();
        let zero = [0u64; 5];
        // w = 0 genuinely explains all-zero wire values, so Some(0) is a correct answer.
        let r = recover_small_secret(&m, &zero, SHIFT, 127, 100); // m.len() < rows
        assert!(r.is_none_or(|w| w.iter().all(|&x| x == 0)));
        for (mm, wire, shift, wmax) in [
            (&m[..0], &zero[..0], SHIFT, 127),
            (&m[..], &zero[..4], SHIFT, 127),
            (&m[..], &zero[..], 0, 127),
            (&m[..], &zero[..], 64, 127),
            (&m[..], &zero[..], SHIFT, -1),
        ] {
            assert_eq!(recover_small_secret(mm, wire, shift, wmax, 30), None);
        }
        assert_eq!(recover_small_secret(&[vec![]], &[0], SHIFT, 127, 30), None);
        assert_eq!(
            recover_small_secret(&[vec![1, 2], vec![3]], &[0, 0], SHIFT, 127, 30),
            None
        );
        let wild: Vec<u64> = (0..5).map(|_| rng.next()).collect();
        for shift in [1, 8, 24, 40, 63] {
            let _ = recover_small_secret(&m, &wild, shift, i64::MAX, 0);
            let _ = recover_small_secret(&m, &wild, shift, 0, 3);
        }
    }

    #[test]
    fn lll_small_cases() {
        // Rows of a unimodular matrix span Z^3, so an LLL-reduced basis consists of unit vectors.
        let mut b: Vec<Vec<i128>> = vec![vec![1, 7, 30], vec![2, 15, 61], vec![5, 36, 152]];
        lll_reduce(&mut b, 0.99);
        assert!(
            b.iter().all(|r| r.iter().map(|x| x * x).sum::<i128>() == 1),
            "{b:?}"
        );
        lll_reduce(&mut Vec::new(), 0.99);
        let mut dep: Vec<Vec<i128>> = vec![vec![2, 4], vec![1, 2], vec![3, 6]];
        lll_reduce(&mut dep, f64::NAN); // dependent rows: must terminate, nonzero part spans (1,2)
        assert!(
            dep.iter().any(|r| r[0].abs() == 1 && r[1] == 2 * r[0]),
            "{dep:?}"
        );
    }

    #[test]
    fn correlation_and_ridge_sanity() {
        let v: Vec<f64> = (0..50).map(|i| ((i * 37) % 11) as f64).collect();
        let w: Vec<f64> = v.iter().map(|x| 2.0 * x + 1.0).collect();
        let neg: Vec<f64> = v.iter().map(|x| -x).collect();
        assert!(
            (correlation(&v, &w) - 1.0).abs() < 1e-12
                && (correlation(&v, &neg) + 1.0).abs() < 1e-12
        );
        assert_eq!(
            (correlation(&v, &[3.0; 50]), correlation(&[], &[])),
            (0.0, 0.0)
        );

        let mut rng = Rng(5);
        let x_true = [1.5, -2.0, 0.25, 4.0];
        let a: Vec<Vec<f64>> = (0..40)
            .map(|_| {
                (0..4)
                    .map(|_| (rng.next() % 1000) as f64 / 100.0 - 5.0)
                    .collect()
            })
            .collect();
        let y: Vec<f64> = a
            .iter()
            .map(|r| r.iter().zip(&x_true).map(|(p, q)| p * q).sum())
            .collect();
        let x = ridge_least_squares(&a, &y, 1e-12);
        assert!(
            x.iter().zip(&x_true).all(|(p, q)| (p - q).abs() < 1e-8),
            "{x:?}"
        );
        // Underdetermined (n < d): ridge keeps it solvable and the fit stays exact.
        let x = ridge_least_squares(&a[..2], &y[..2], 1e-9);
        let fit: Vec<f64> = a[..2]
            .iter()
            .map(|r| r.iter().zip(&x).map(|(p, q)| p * q).sum())
            .collect();
        assert!(
            fit.iter().zip(&y).all(|(p, q)| (p - q).abs() < 1e-5),
            "{fit:?}"
        );
        assert!(ridge_least_squares(&[], &[], 1e-9).is_empty());
        // lambda = 0 with a duplicated column (singular AᵀA): finite answer that still fits exactly.
        let dup: Vec<Vec<f64>> = a.iter().map(|r| vec![r[0], r[0], r[1]]).collect();
        let yd: Vec<f64> = a.iter().map(|r| 3.0 * r[0] - r[1]).collect();
        let x = ridge_least_squares(&dup, &yd, 0.0);
        assert!(
            x.iter().all(|v| v.is_finite())
                && (x[0] + x[1] - 3.0).abs() < 1e-8
                && (x[2] + 1.0).abs() < 1e-8,
            "{x:?}"
        );
    }
}
