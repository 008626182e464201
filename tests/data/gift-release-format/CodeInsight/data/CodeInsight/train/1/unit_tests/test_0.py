arr0 = np.array([[1, 2], [3, 4]])
assert np.array_equal(test(arr0), np.array([[10, 14], [14, 20]])), 'Test failed'
