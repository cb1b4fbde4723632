"""vbinfer.noise.standard_normal: jax.random.normal, bit for bit, from a written-out threefry."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vbinfer.noise import standard_normal

SHAPES = [(1,), (7,), (3, 4, 5), (50, 2, 164), (2, 1000)]


@pytest.mark.parametrize("shape", SHAPES)
def test_equals_jax_random_normal_float32(shape):
    for seed in (0, 1, 12345):
        key = jax.random.fold_in(jax.random.key(seed), 17)
        a = jax.random.normal(key, shape, jnp.float32)
        b = jax.jit(standard_normal, static_argnums=(1, 2))(key, shape, jnp.float32)
        assert b.dtype == jnp.float32 and b.shape == shape
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))


def test_equals_jax_random_normal_float64(x64):
    key = jax.random.key(3)
    for shape in SHAPES[:4]:
        a = jax.random.normal(key, shape, jnp.float64)
        b = standard_normal(key, shape, jnp.float64)
        assert b.dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))


def test_raw_keys_vmap_and_fallbacks():
    raw = jax.random.PRNGKey(5)  # legacy uint32[2] key
    np.testing.assert_array_equal(
        np.asarray(standard_normal(raw, (9, 4))), np.asarray(jax.random.normal(raw, (9, 4)))
    )
    keys = jax.random.split(jax.random.key(2), 6)
    a = jax.vmap(lambda k: jax.random.normal(k, (40, 3)))(keys)
    b = jax.jit(jax.vmap(lambda k: standard_normal(k, (40, 3))))(keys)
    np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
    # another key implementation and other dtypes go through jax.random.normal itself
    rbg = jax.random.key(1, impl="rbg")
    np.testing.assert_array_equal(
        np.asarray(standard_normal(rbg, (8,))), np.asarray(jax.random.normal(rbg, (8,)))
    )
    half = standard_normal(jax.random.key(0), (8,), jnp.bfloat16)
    assert half.dtype == jnp.bfloat16
    assert standard_normal(jax.random.key(0), (0, 3)).shape == (0, 3)


def test_moments():
    z = np.asarray(standard_normal(jax.random.key(11), (200_000,)), np.float64)
    assert abs(z.mean()) < 5 * 1 / np.sqrt(z.size)
    assert abs(z.var() - 1.0) < 5 * np.sqrt(2 / z.size)
