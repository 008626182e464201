df0 = pd.DataFrame({'a': [1.5, 0.5]}, index=['p', 'q'])
pd.testing.assert_frame_equal(test(df0, 'a', 1), pd.DataFrame({'a': [1.5]}, index=['p']))
