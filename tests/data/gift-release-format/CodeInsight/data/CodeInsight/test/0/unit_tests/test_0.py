df0 = pd.DataFrame({'A': [1, 2], 'B': [3, 4]})
assert test(df0, lambda row: row['A'] * row['B']).equals(pd.Series([3, 8])), 'Test failed'
