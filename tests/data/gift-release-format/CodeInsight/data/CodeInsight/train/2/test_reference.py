def test(df0):
    return df0.groupby('key')['val'].mean()
