df0 = pd.DataFrame({'key': ['a', 'b', 'a'], 'val': [1.0, 3.0, 2.0]})
expected = pd.Series([1.5, 3.0], index=pd.Index(['a', 'b'], name='key'), name='val')
pd.testing.assert_series_equal(test(df0), expected)
