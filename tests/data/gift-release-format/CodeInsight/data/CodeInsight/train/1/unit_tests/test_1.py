result = test(np.eye(2))
assert result.dtype == np.float64 and np.allclose(result, np.eye(2))
