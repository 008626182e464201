df0 = pd.DataFrame({'a': [1, 5, 3], 'b': ['x', 'y', 'z']})
result = test(df0, 'a', 2).reset_index(drop=True)
assert result.equals(pd.DataFrame({'a': [5, 3], 'b': ['y', 'z']})), 'Test failed'
